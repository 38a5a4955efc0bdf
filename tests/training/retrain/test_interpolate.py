"""Weight-space interpolation of a tuned version with its base (WiSE-FT)."""

from __future__ import annotations

import json

import pytest
import torch

from training.model.loading import load_model
from training.retrain.interpolate import InterpolateConfig, interpolate_state, main


def test_interpolate_state_keeps_the_asked_fraction_of_the_update():
    base = {"w": torch.zeros(3), "b": torch.ones(2, dtype=torch.bfloat16)}
    tuned = {"w": torch.tensor([2.0, -4.0, 8.0]), "b": torch.full((2,), 3.0, dtype=torch.bfloat16)}

    half = interpolate_state(base, tuned, 0.5)

    assert torch.equal(half["w"], torch.tensor([1.0, -2.0, 4.0]))
    assert half["b"].dtype == torch.bfloat16 and torch.equal(
        half["b"].float(), torch.full((2,), 2.0)
    )
    assert torch.equal(interpolate_state(base, tuned, 0.0)["w"], base["w"])
    assert torch.equal(interpolate_state(base, tuned, 1.0)["w"], tuned["w"])
    with pytest.raises(ValueError, match="differ"):
        interpolate_state(base, {"w": tuned["w"]}, 0.5)


@pytest.mark.parametrize("keep", [-0.1, 1.5])
def test_keep_is_a_fraction(keep):
    with pytest.raises(ValueError, match="fraction"):
        InterpolateConfig(tuned="x", keep=keep)


def test_the_command_writes_a_version_between_base_and_tuned(tmp_path, random_model):
    tuned_folder = tmp_path / "tuned"
    tuned = load_model(random_model)
    with torch.no_grad():
        for parameter in tuned.parameters():
            parameter.add_(1.0)
    tuned.save_pretrained(tuned_folder)
    (tuned_folder / "lineage.json").write_text(
        json.dumps(
            {
                "base_model": str(random_model),
                "dataset": {
                    "pairs": "p",
                    "rows": 1,
                    "by_source": {},
                    "records_sha256": None,
                    "pairs_sha256": None,
                    "dropped": {},
                    "judge": None,
                },
                "method": "dpo-full",
                "hyperparameters": {"beta": 1.0},
                "libraries": {},
                "train_log": [],
                "eval": {"models": {}},
            }
        )
    )
    from training.model.loading import load_processor

    load_processor(random_model).save_pretrained(tuned_folder)
    out = tmp_path / "half"

    assert main(InterpolateConfig(str(random_model), str(tuned_folder), 0.25, out)) == 0

    base_state = load_model(random_model).state_dict()
    written = load_model(out).state_dict()
    for name, value in written.items():
        assert torch.allclose(value, base_state[name] + 0.25, atol=1e-5), name
    lineage = json.loads((out / "lineage.json").read_text())
    assert lineage["interpolation"]["keep"] == 0.25
    assert lineage["hyperparameters"] == {"beta": 1.0, "keep_update": 0.25}
    assert "eval" not in lineage  # the tuned version's evaluation is not this one's
    assert "keep_update | 0.25" in (out / "README.md").read_text()

"""The training CLI: flags from config dataclasses, YAML recipes, usage errors before work."""

from __future__ import annotations

import pytest
import torch

from training.cli import main as training_main


@pytest.mark.parametrize(
    ("command", "option"), [("sft", "--mix"), ("synth", "--kinds"), ("eval", "--kinds")]
)
def test_an_unknown_kind_is_a_usage_error_before_any_work(tmp_path, capsys, command, option):
    with pytest.raises(SystemExit) as exit_:
        model = ["--model", "models/ocrguard-tiny"] if command == "eval" else []
        training_main([command, *model, "--out", str(tmp_path / "out"), option, "line,bogus"])
    assert exit_.value.code == 2
    assert f"{command}: unknown kinds ['bogus']" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_sft_on_a_gpu_this_machine_lacks_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        training_main(["sft", "--out", str(tmp_path / "run"), "--device", "cuda"])
    assert exit_.value.code == 2
    assert "sft: cuda asked for, but torch sees no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_every_committed_recipe_reads_into_its_config():
    from pathlib import Path

    from training.cli import build_config
    from training.model.sft import SftConfig

    recipes = sorted(Path("training/recipes/ocrguard-tiny").glob("*.yaml"))
    assert len(recipes) >= 10
    for recipe in recipes:
        config = build_config(SftConfig, recipe, {})
        assert config.steps > 0 and isinstance(config.lr, float) and config.mix


def test_the_dpo_recipe_reads_into_the_retrain_config():
    from pathlib import Path

    from training.cli import build_config
    from training.retrain.loop import RetrainConfig

    config = build_config(RetrainConfig, Path("training/recipes/dpo/ocrguard-tiny.yaml"), {})
    assert config.replay_ratio > 0 and config.replay_synth > 0 and config.anchor_ratio > 0
    assert Path(config.replay) == Path("data/replay-sft") and config.min_reduction == 0.594


def test_flags_override_a_recipe_and_unknown_fields_are_refused(tmp_path):
    from training.cli import build_config
    from training.model.synth import SynthConfig

    recipe = tmp_path / "r.yaml"
    recipe.write_text("count: 7\nseed: '3'\nkinds: line\n")
    config = build_config(SynthConfig, recipe, {"count": 2})
    assert (config.count, config.seed, config.kinds) == (2, 3, "line")
    recipe.write_text("cuont: 7\n")
    with pytest.raises(ValueError, match="unknown fields \\['cuont'\\]"):
        build_config(SynthConfig, recipe, {})

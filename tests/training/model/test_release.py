"""Release: a checkpoint becomes a servable model folder (bf16 weights, card, lineage)."""

from __future__ import annotations

import json

import torch
from safetensors import safe_open

from training.cli import main as training_main
from training.model.loading import load_model
from training.model.sft import SftConfig, run

from .runs import tiny_config


def test_release_makes_a_servable_folder_and_a_run_continues_from_it(tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from app.model_card import read_revision as _read_revision

    config = tiny_config(tmp_path, steps=2)
    checkpoint = run(config)
    card = tmp_path / "card.md"
    card.write_text("# tiny\n\nrevision: draft\n\nA test model.\n")
    out = tmp_path / "models" / "tiny"
    argv = ["release", "--checkpoint", str(checkpoint), "--out", str(out)]
    assert training_main([*argv, "--revision", "sft-step-2", "--card", str(card)]) == 0
    assert not (out / "trainer_state.pt").exists()  # no optimizer state in a release
    assert json.loads((out / "training_state.json").read_text())["step"] == 2
    assert _read_revision(out) == "sft-step-2"
    with safe_open(out / "model.safetensors", "pt") as weights:  # stored in bfloat16
        assert {weights.get_tensor(name).dtype for name in weights.keys()} == {torch.bfloat16}  # noqa: SIM118
    assert next(load_model(out).parameters()).dtype == torch.float32  # computed in float32
    AutoProcessor.from_pretrained(out, local_files_only=True)
    AutoModelForImageTextToText.from_pretrained(out, local_files_only=True)
    # a second release keeps the installed card and only moves its revision line
    assert training_main([*argv, "--revision", "sft-step-2b"]) == 0
    assert (
        _read_revision(out) == "sft-step-2b" and "A test model." in (out / "README.md").read_text()
    )
    # and a new run continues from the released folder at its step
    continued = SftConfig(**{**config.__dict__, "out": tmp_path / "run2", "steps": 3})
    continued.init_from = str(out)
    run(continued)
    state = torch.load(continued.out / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert state["step"] == 3 and state["rewarm_from"] == 2
    # whose release does not carry how the run loaded its start (transformers records it)
    loaded = json.loads((continued.out / "checkpoint" / "tokenizer_config.json").read_text())
    assert loaded.get("local_files_only")
    again = tmp_path / "models" / "tiny2"
    release_argv = ["release", "--checkpoint", str(continued.out / "checkpoint"), "--out"]
    assert training_main([*release_argv, str(again), "--revision", "b", "--card", str(card)]) == 0
    released = json.loads((again / "tokenizer_config.json").read_text())
    assert "local_files_only" not in released and "is_local" not in released
    AutoProcessor.from_pretrained(again, local_files_only=True)

"""Synthetic data and the from-scratch SFT: deterministic data, loss logged, weights move,
checkpoints resume."""

from __future__ import annotations

import json

import pytest
import torch

from app.prompt import parse_output
from training.architecture import TINY
from training.sft import SftConfig, run
from training.synth import KINDS, Generator

pytestmark = pytest.mark.slow


def test_synth_is_deterministic_and_targets_parse():
    a, b = Generator(3), Generator(3)
    for i, kind in enumerate(KINDS):
        first, second = a.sample(i, kind), b.sample(i, kind)
        assert first.target == second.target
        assert list(first.image.getdata()) == list(second.image.getdata())
        assert parse_output(first.target) == first.fields
    assert Generator(4).sample(0, "line").target != Generator(3).sample(0, "line").target


def test_sft_trains_logs_and_resumes(tmp_path):
    config = SftConfig(
        out=tmp_path / "run",
        steps=4,
        batch_size=2,
        warmup=1,
        checkpoint_every=2,
        eval_every=1000,
        eval_samples=1,
        max_new_tokens=4,
        vocab_size=320,
        size=TINY,
        threads=1,
    )
    config_first = SftConfig(**{**config.__dict__, "steps": 2})
    checkpoint = run(config_first)
    from transformers import AutoModelForImageTextToText

    before = {
        k: v.clone()
        for k, v in AutoModelForImageTextToText.from_pretrained(checkpoint).state_dict().items()
    }
    state = torch.load(checkpoint / "trainer_state.pt", weights_only=False)
    assert state["step"] == 2
    run(config)  # resumes at step 2 and runs to 4
    after = AutoModelForImageTextToText.from_pretrained(checkpoint).state_dict()
    assert torch.load(checkpoint / "trainer_state.pt", weights_only=False)["step"] == 4
    changed = [
        k for k, v in after.items() if v.dtype.is_floating_point and not torch.equal(v, before[k])
    ]
    assert len(changed) > len(after) // 2  # training moved the weights
    log = [json.loads(line) for line in (tmp_path / "run" / "train.jsonl").read_text().splitlines()]
    evals = [entry for entry in log if "eval" in entry]
    assert evals and set(evals[-1]["eval"]) == set(KINDS)
    assert all("cer" in scores for scores in evals[-1]["eval"].values())
    health = [entry for entry in log if "health" in entry]
    # checked when each run starts (steps 0 and 2) and after each evaluation (the final
    # steps 2 and 4 of the two runs)
    assert [entry["step"] for entry in health] == [0, 2, 2, 4]
    assert all(entry["health"]["visual_token_norm"] > 0 for entry in health)


def test_a_run_continued_from_a_release_warms_up_again():
    from training.sft import _lr

    config = SftConfig(steps=1000, warmup=100, lr=1e-3)
    assert _lr(0, config) == pytest.approx(1e-5)  # a fresh run warms up from step 0
    assert _lr(500, config) > 1e-4  # ...and is mid-schedule at 500
    # continued from a release at step 500 with a fresh optimizer: warm-up restarts there
    assert _lr(500, config, rewarm_from=500) == pytest.approx(1e-5)
    assert _lr(599, config, rewarm_from=500) == pytest.approx(1e-3)
    assert _lr(1000, config, rewarm_from=500) == pytest.approx(1e-4)  # cosine ends at 10 %

"""The from-scratch SFT: loss logged, weights move, checkpoints resume."""

from __future__ import annotations

import json

import pytest
import torch

from training.model.sft import SftConfig, run
from training.model.synth import KINDS, PAGE_WIDTH

from .runs import MIXED, tiny_config

pytestmark = pytest.mark.slow


def test_sft_refuses_an_unknown_kind_in_the_mix_before_training(tmp_path):
    with pytest.raises(ValueError, match="bogus"):
        run(SftConfig(out=tmp_path / "run", steps=1, mix="line,bogus"))
    assert not (tmp_path / "run").exists()


def test_sft_trains_logs_and_resumes(tmp_path):
    config = tiny_config(tmp_path, checkpoint_every=2)
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
    assert all({"cer", "exact_rate"} <= set(scores) for scores in evals[-1]["eval"].values())
    health = [entry for entry in log if "health" in entry]
    # checked when each run starts (steps 0 and 2) and after each evaluation (the final
    # steps 2 and 4 of the two runs)
    assert [entry["step"] for entry in health] == [0, 2, 2, 4]
    assert all(entry["health"]["visual_token_norm"] > 0 for entry in health)


def test_a_run_continued_from_a_release_warms_up_again():
    from training.model.sft import _lr

    config = SftConfig(steps=1000, warmup=100, lr=1e-3)
    assert _lr(0, config) == pytest.approx(1e-5)  # a fresh run warms up from step 0
    assert _lr(500, config) > 1e-4  # ...and is mid-schedule at 500
    # continued from a release at step 500 with a fresh optimizer: warm-up restarts there
    assert _lr(500, config, rewarm_from=500) == pytest.approx(1e-5)
    assert _lr(599, config, rewarm_from=500) == pytest.approx(1e-3)
    assert _lr(1000, config, rewarm_from=500) == pytest.approx(1e-4)  # cosine ends at 10 %


def test_batches_rendered_by_worker_processes_are_the_in_process_batches(tmp_path):
    from transformers import AutoProcessor

    from training.model.sft import batches

    processor = AutoProcessor.from_pretrained("models/ocrguard-tiny", local_files_only=True)
    config = tiny_config(tmp_path, steps=7, **MIXED)
    in_process = list(batches(processor, config, start=3))
    with_workers = list(
        batches(processor, tiny_config(tmp_path, steps=7, workers=2, **MIXED), start=3)
    )
    assert len(in_process) == len(with_workers) == 4  # steps 3, 4, 5 and 6, in order
    for ours, theirs in zip(in_process, with_workers):
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[name], theirs[name]) for name in ours)
    # one kind per step, in the mix's turn: step 3 is a line, 4 a block, 5 a table
    widths = [int(batch["image_grid_thw"][:, 2].max()) * 14 for batch in in_process[:3]]
    assert widths[1] > PAGE_WIDTH >= widths[0]


def test_sft_stops_at_its_time_limit_with_a_checkpoint_and_resumes(tmp_path):
    config = tiny_config(tmp_path, steps=5, workers=1, stop_after_minutes=1e-6, **MIXED)
    checkpoint = run(config)  # the limit has passed after the first step
    assert torch.load(checkpoint / "trainer_state.pt", weights_only=False)["step"] == 1
    run(config)  # the same command resumes and stops again, one step further
    assert torch.load(checkpoint / "trainer_state.pt", weights_only=False)["step"] == 2
    run(tiny_config(tmp_path, steps=5, workers=1, **MIXED))  # without the limit it runs to the end
    assert torch.load(checkpoint / "trainer_state.pt", weights_only=False)["step"] == 5
    losses = [
        (entry["step"], entry["kind"])
        for entry in map(json.loads, (tmp_path / "run" / "train.jsonl").read_text().splitlines())
        if "loss" in entry
    ]
    # each logged loss names its batch's kind: steps 1, 2 and 5 trained on the mix's
    # line, block and (4 % 3 = 1) block
    assert losses == [(1, "line"), (2, "block"), (5, "block")]


def test_the_evaluations_during_training_cover_the_open_kinds_it_trains():
    from training.model.sft import _eval_kinds

    assert _eval_kinds(SftConfig(mix="line,block")) == KINDS
    assert _eval_kinds(SftConfig(mix="open_block,line,open_line")) == KINDS + (
        "open_line",
        "open_block",
    )

"""Synthetic data and the from-scratch SFT: deterministic data, loss logged, weights move,
checkpoints resume."""

from __future__ import annotations

import json

import pytest
import torch

from app.prompt import parse_output
from training.architecture import TINY
from training.sft import SftConfig, run
from training.synth import DRILLS, KINDS, PAGE_WIDTH, Generator, _vocabulary

pytestmark = pytest.mark.slow


def test_synth_is_deterministic_and_targets_parse():
    a, b = Generator(3), Generator(3)
    for i, kind in enumerate(KINDS + DRILLS):
        first, second = a.sample(i, kind), b.sample(i, kind)
        assert first.target == second.target
        assert list(first.image.getdata()) == list(second.image.getdata())
        assert parse_output(first.target) == first.fields
    assert Generator(4).sample(0, "line").target != Generator(3).sample(0, "line").target


def test_the_words_drill_draws_random_corpus_words():
    vocabulary = set(_vocabulary())
    texts = [Generator(0).sample(i, "words").fields.text for i in range(200)]
    for text in texts:
        *whole, last = text.split()  # the last word may be cut at the line's length
        assert set(whole) <= vocabulary and any(w.startswith(last) for w in vocabulary)
    assert len(set(texts)) == len(texts)


def test_the_wordblock_drill_is_a_block_page_of_random_corpus_words():
    vocabulary = set(_vocabulary())
    pages = [Generator(0).sample(i, "wordblock") for i in range(100)]
    for page in pages:
        lines = page.fields.text.split("\n")
        assert 2 <= len(lines) <= 5
        header = (page.fields.header, {w.upper() for w in vocabulary})  # drawn in capitals
        for line, known in [header, *((line, vocabulary) for line in lines)]:
            *whole, last = line.split()  # the last word may be cut at 48 characters
            assert set(whole) <= known and any(w.startswith(last) for w in known)
            assert len(line) <= 48
    assert len({page.fields.text for page in pages}) == len(pages)
    # drawn like a prose block: on the block's wider page, not the 448-pixel default
    for kind_pages in (pages, [Generator(0).sample(i, "block") for i in range(100)]):
        assert PAGE_WIDTH < max(page.image.width for page in kind_pages) <= 640


@pytest.mark.parametrize(
    ("command", "option"), [("sft", "--mix"), ("synth", "--kinds"), ("eval", "--kinds")]
)
def test_an_unknown_kind_is_a_usage_error_before_any_work(tmp_path, capsys, command, option):
    from training.__main__ import main as training_main

    with pytest.raises(SystemExit) as exit_:
        model = ["--model", "models/ocrguard-tiny"] if command == "eval" else []
        training_main([command, *model, "--out", str(tmp_path / "out"), option, "line,bogus"])
    assert exit_.value.code == 2
    assert f"{option}: unknown kinds ['bogus']" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_synth_writes_the_kinds_it_is_asked_for_in_order(tmp_path):
    from training.__main__ import main as training_main

    out = tmp_path / "data"
    assert (
        training_main(
            ["synth", "--out", str(out), "--count", "4", "--seed", "3", "--kinds", "line,wordblock"]
        )
        == 0
    )
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [row["kind"] for row in rows] == ["line", "wordblock", "line", "wordblock"]
    for row in rows:
        assert row["target"] == Generator(3).sample(row["index"], row["kind"]).target
        assert (out / row["image"]).is_file()


def test_sft_refuses_an_unknown_kind_in_the_mix_before_training(tmp_path):
    with pytest.raises(ValueError, match="bogus"):
        run(SftConfig(out=tmp_path / "run", steps=1, mix="line,bogus"))
    assert not (tmp_path / "run").exists()


def _tiny_config(tmp_path, **overrides) -> SftConfig:
    """A run of the tiny network that takes seconds: a few steps of two samples."""
    values = dict(
        out=tmp_path / "run",
        steps=4,
        batch_size=2,
        warmup=1,
        eval_every=1000,
        eval_samples=1,
        max_new_tokens=4,
        vocab_size=320,
        size=TINY,
        threads=1,
    )
    return SftConfig(**{**values, **overrides})


# One kind per step in turn from step 0: line, block, table, line, ...
MIXED = {"lines_only_until": 0.0, "mix": "line,block,table"}


def test_sft_trains_logs_and_resumes(tmp_path):
    config = _tiny_config(tmp_path, checkpoint_every=2)
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


def test_release_makes_a_servable_folder_and_a_run_continues_from_it(tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from app.engines.huggingface import _read_revision
    from training.__main__ import main as training_main

    config = _tiny_config(tmp_path, steps=2)
    checkpoint = run(config)
    card = tmp_path / "card.md"
    card.write_text("# tiny\n\nrevision: draft\n\nA test model.\n")
    out = tmp_path / "models" / "tiny"
    argv = ["release", "--checkpoint", str(checkpoint), "--out", str(out)]
    assert training_main([*argv, "--revision", "sft-step-2", "--card", str(card)]) == 0
    assert not (out / "trainer_state.pt").exists()  # no optimizer state in a release
    assert json.loads((out / "training_state.json").read_text())["step"] == 2
    assert _read_revision(out) == "sft-step-2"
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


def test_a_run_continued_from_a_release_warms_up_again():
    from training.sft import _lr

    config = SftConfig(steps=1000, warmup=100, lr=1e-3)
    assert _lr(0, config) == pytest.approx(1e-5)  # a fresh run warms up from step 0
    assert _lr(500, config) > 1e-4  # ...and is mid-schedule at 500
    # continued from a release at step 500 with a fresh optimizer: warm-up restarts there
    assert _lr(500, config, rewarm_from=500) == pytest.approx(1e-5)
    assert _lr(599, config, rewarm_from=500) == pytest.approx(1e-3)
    assert _lr(1000, config, rewarm_from=500) == pytest.approx(1e-4)  # cosine ends at 10 %


def test_batches_rendered_by_worker_processes_are_the_in_process_batches(tmp_path):
    from transformers import AutoProcessor

    from training.sft import batches

    processor = AutoProcessor.from_pretrained("models/ocrguard-tiny", local_files_only=True)
    config = _tiny_config(tmp_path, steps=7, **MIXED)
    in_process = list(batches(processor, config, start=3))
    with_workers = list(
        batches(processor, _tiny_config(tmp_path, steps=7, workers=2, **MIXED), start=3)
    )
    assert len(in_process) == len(with_workers) == 4  # steps 3, 4, 5 and 6, in order
    for ours, theirs in zip(in_process, with_workers):
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[name], theirs[name]) for name in ours)
    # one kind per step, in the mix's turn: step 3 is a line, 4 a block, 5 a table
    widths = [int(batch["image_grid_thw"][:, 2].max()) * 14 for batch in in_process[:3]]
    assert widths[1] > PAGE_WIDTH >= widths[0]


def test_sft_stops_at_its_time_limit_with_a_checkpoint_and_resumes(tmp_path):
    config = _tiny_config(tmp_path, steps=5, workers=1, stop_after_minutes=1e-6, **MIXED)
    checkpoint = run(config)  # the limit has passed after the first step
    assert torch.load(checkpoint / "trainer_state.pt", weights_only=False)["step"] == 1
    run(config)  # the same command resumes and stops again, one step further
    assert torch.load(checkpoint / "trainer_state.pt", weights_only=False)["step"] == 2
    run(_tiny_config(tmp_path, steps=5, workers=1, **MIXED))  # without the limit it runs to the end
    assert torch.load(checkpoint / "trainer_state.pt", weights_only=False)["step"] == 5
    losses = [
        (entry["step"], entry["kind"])
        for entry in map(json.loads, (tmp_path / "run" / "train.jsonl").read_text().splitlines())
        if "loss" in entry
    ]
    # each logged loss names its batch's kind: steps 1, 2 and 5 trained on the mix's
    # line, block and (4 % 3 = 1) block
    assert losses == [(1, "line"), (2, "block"), (5, "block")]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_sft_on_a_gpu_this_machine_lacks_is_a_usage_error(tmp_path, capsys):
    from training.__main__ import main as training_main

    with pytest.raises(SystemExit) as exit_:
        training_main(["sft", "--out", str(tmp_path / "run"), "--device", "cuda"])
    assert exit_.value.code == 2
    assert "--device: cuda asked for, but torch sees no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_pages_drawn_without_the_fonts_say_so(monkeypatch, tmp_path):
    from training import synth

    monkeypatch.setattr(synth, "FONT_DIR", tmp_path)
    synth._font.cache_clear()
    try:
        with pytest.warns(UserWarning, match="missing: drawing with PIL's default font"):
            Generator(0).sample(0, "line")
    finally:
        synth._font.cache_clear()

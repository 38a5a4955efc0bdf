"""DPO on a tiny Qwen2.5-VL on CPU (full and LoRA): loss logged, every trainable parameter
moves, the version folder loads and carries its lineage; candidates and retrain end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from app.failure_record import Correction
from app.model_card import read_revision
from training.retrain.candidates import CandidateConfig, sample_candidates
from training.retrain.choice import PairRules
from training.retrain.dpo import DpoArgs, build_trainer, run, save_version
from training.retrain.loop import RetrainConfig, retrain
from training.retrain.pairs import build_pairs, sha256_file

from ..records import CLEAN, page_png, record, write_kept_pages, write_snapshot

pytestmark = pytest.mark.slow

FEEDBACK = {"page": 1, "text": "Nota fiscal", "time": 1.0}


@pytest.fixture
def pairs(tmp_path):
    snapshot = write_snapshot(
        tmp_path / "snapshot",
        [
            (record("a"), FEEDBACK),
            (record("b", recovered=True, final_output=CLEAN), None),
            (record("c", attempt=2, recovered=True, final_output=CLEAN), None),
        ],
    )
    build_pairs(snapshot, tmp_path / "pairs", PairRules())
    return tmp_path / "pairs"


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_dpo_trains_every_parameter_and_writes_a_version(tmp_path, random_model, pairs, lora):
    args = DpoArgs(
        model=str(random_model),
        pairs=pairs,
        out=tmp_path / "models",
        lora=lora,
        max_steps=3,
        learning_rate=1e-2,
        threads=1,
    )
    folder = tmp_path / "models" / "v"
    trainer = build_trainer(args, folder)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    if lora:
        assert before and all("lora_" in n for n in before)

    trainer.train()

    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    params = dict(trainer.model.named_parameters())
    unchanged = [n for n, p in before.items() if torch.equal(p, params[n].detach())]
    assert not unchanged

    save_version(trainer, args, folder)
    from transformers import AutoModelForImageTextToText, AutoProcessor

    AutoProcessor.from_pretrained(folder)
    saved = AutoModelForImageTextToText.from_pretrained(folder)
    assert not any("lora" in n for n in saved.state_dict())  # LoRA merged: servable as is
    lineage = json.loads((folder / "lineage.json").read_text())
    assert lineage["dataset"]["records_sha256"] == sha256_file(tmp_path / "snapshot/records.jsonl")
    assert lineage["hyperparameters"]["lora"] is lora
    assert lineage["base_model"] == str(random_model.resolve())
    assert lineage["base_revision"] == "local"  # the fixture's folder has no card revision
    assert (
        lineage["dataset"]["by_rejected"]
        == json.loads((pairs / "manifest.json").read_text())["by_rejected"]
    )
    card = (folder / "README.md").read_text()
    assert lineage["dataset"]["records_sha256"] in card and "learning_rate" in card
    assert "revision `local`" in card
    # served, the version reports the revision it was trained from and itself
    assert read_revision(folder) == f"local+{folder.name}"


def test_run_creates_the_next_version(tmp_path, random_model, pairs):
    args = DpoArgs(
        model=str(random_model),
        pairs=pairs,
        out=tmp_path / "models",
        name="tiny",
        max_steps=1,
        threads=1,
    )
    assert run(args).name == "tiny-v1"
    assert run(args).name == "tiny-v2"


def test_candidates_are_sampled_labelled_and_reproducible(tmp_path, random_model):
    """Every caught page is sampled (its attempts share the page), corrected or not, and kept
    clean pages up to the limit; a second run samples nothing new."""
    snapshot = write_snapshot(
        tmp_path / "snapshot",
        [
            (record("a"), None),
            (record("a", attempt=2), None),
            (record("b"), FEEDBACK),
        ],
    )
    write_kept_pages(snapshot, ["c", "d", "e"])
    config = CandidateConfig(
        snapshot, str(random_model), n=2, max_new_tokens=8, max_clean_pages=1, threads=1
    )
    assert sample_candidates(config) == 6  # a, b and one of the three clean pages, 2 each
    lines = [json.loads(x) for x in (snapshot / "candidates.jsonl").read_text().splitlines()]
    keys = [c["page_key"] for c in lines]
    assert keys[:4] == ["a#1", "a#1", "b#1", "b#1"] and keys[4] in ("c#1", "d#1", "e#1")
    assert [(c["seed"], c["index"], c["temperature"]) for c in lines[:2]] == [
        (0, 0, 0.7),
        (0, 1, 0.7),
    ]
    assert all(isinstance(c["degenerate"], bool) and c["tokens"] <= 8 for c in lines)
    assert sample_candidates(config) == 0  # already sampled

    again = tmp_path / "again"
    write_snapshot(again, [(record("a"), None)])
    sample_candidates(CandidateConfig(again, str(random_model), n=2, max_new_tokens=8, threads=1))
    assert [
        json.loads(x)["text"] for x in (again / "candidates.jsonl").read_text().splitlines()
    ] == [c["text"] for c in lines[:2]]


def test_retrain_from_redis_to_an_evaluated_candidate(
    tmp_path, random_model, redis_client, key_prefix
):
    """One round: the export reads the failure stream and a correction sent after an earlier
    export, trains a candidate under --work, evaluates it against the serving model, and
    writes nothing to --out unless it is better (a random model is not)."""
    stream = key_prefix + "failures"
    for n, (rid, extra) in enumerate(
        [("a", {}), ("b", {"recovered": True, "final_output": CLEAN})]
    ):
        rec = record(rid, image_sha256=f"img{n}", **extra)
        redis_client.set(f"{key_prefix}image:img{n}", page_png(n))
        redis_client.xadd(stream, rec.to_fields())
    config = RetrainConfig(
        model=str(random_model),
        work=tmp_path / "work",
        out=tmp_path / "models",
        stream_key=stream,
        key_prefix=key_prefix,
        candidates=0,
        max_steps=2,
        eval_per_kind=1,
        eval_kinds="line",
        eval_prone=1,
        max_new_tokens=4,
        threads=1,
        replay=tmp_path / "replay",  # written by the first round: the SFT generator's pages
        replay_ratio=1.0,
        replay_synth=3,
    )
    first = retrain(config, redis_client)
    assert first["export"]["written"] == 2
    assert first["pairs"]["by_source"] == {"recovered": 1, "replay": 1}
    assert len((tmp_path / "replay" / "samples.jsonl").read_text().splitlines()) == 3
    # the correction of page a arrives after that export: the next round still uses it
    correction = Correction(
        "a", 1, {"header": "", "margin": "", "footer": "", "text": "Nota fiscal"}
    )
    redis_client.xadd(f"{key_prefix}corrections", correction.to_fields())
    result = retrain(config, redis_client)
    assert result["export"]["corrections"] == 1 and result["export"]["written"] == 0
    assert result["pairs"]["by_source"] == {"feedback": 1, "recovered": 1, "replay": 2}
    folder = Path(result["model"])
    assert folder.parent == tmp_path / "work" / "versions"
    lineage = json.loads((folder / "lineage.json").read_text())
    assert set(lineage["eval"]["models"]) == {str(random_model), str(folder)}
    assert "greedy" in lineage["comparison"]["degeneration"]
    assert result["released"] is None and not (tmp_path / "models").exists()
    card = (folder / "README.md").read_text()
    assert "not released" in card and "](degeneration.svg)" in card
    plot = (folder / "degeneration.svg").read_text()
    assert plot.startswith("<svg") and f"{folder.name}, greedy:" in plot


def test_anchor_rows_give_the_dpo_term_no_gradient_and_the_nll_term_one(tmp_path, random_model):
    # chosen == rejected: the DPO term is log 2 with a zero gradient (up to rounding); the
    # NLL term on the same rows pulls the model towards the served output
    import math

    snapshot = write_snapshot(tmp_path / "snapshot", [])
    write_kept_pages(snapshot, ["k1", "k2"])
    pairs = tmp_path / "pairs"
    (pairs / "images").mkdir(parents=True)
    rows = []
    for name in ("k1", "k2"):
        image = f"images/kept-{name}.png"
        (pairs / image).write_bytes((snapshot / image).read_bytes())
        message = [{"role": "assistant", "content": CLEAN}]
        row = {"images": [image], "prompt": record(name).page_prompt.messages()}
        rows.append(json.dumps({**row, "chosen": message, "rejected": message}))
    (pairs / "pairs.jsonl").write_text("\n".join(rows) + "\n")

    def loss_and_gradient(sft_weight: float) -> tuple[float, float]:
        args = DpoArgs(
            model=str(random_model),
            pairs=pairs,
            out=tmp_path / "models",
            batch_size=2,
            sft_weight=sft_weight,
            threads=1,
        )
        trainer = build_trainer(args, tmp_path / "models" / "v")
        batch = next(iter(trainer.get_train_dataloader()))
        loss = trainer.compute_loss(trainer.model, batch)
        loss.backward()
        grads = [p.grad.norm() for p in trainer.model.parameters() if p.grad is not None]
        return loss.item(), torch.stack(grads).norm().item()

    dpo_loss, dpo_gradient = loss_and_gradient(0.0)
    assert dpo_loss == pytest.approx(math.log(2), abs=1e-5)
    _, nll_gradient = loss_and_gradient(1.0)
    assert nll_gradient > 0.1 and dpo_gradient < 1e-4 * nll_gradient


def test_loop_style_pairs_put_the_shared_start_in_the_prompt_and_train(tmp_path, random_model):
    # Rendered as text (a prefix cannot be a chat message), a row without a prefix collates
    # to exactly the tokens TRL makes of its messages; a row with one has the prefix's tokens
    # at the end of the prompt, and only the closing or the loop as the completion.
    from transformers import AutoProcessor
    from trl.trainer.dpo_trainer import DataCollatorForVisionPreference

    from training.retrain.pairs import load_pairs, read_pairs

    looping = '{"header":"","margin":"","footer":"","text":"Nota fiscal Nota fiscal Nota fiscal'
    cut = looping.index(" Nota")
    snapshot = write_snapshot(
        tmp_path / "snapshot",
        [(record("a", output=looping, repeat_chars=cut + 1), FEEDBACK)],
    )
    pairs = tmp_path / "pairs"
    processor = AutoProcessor.from_pretrained(random_model)
    build_pairs(snapshot, pairs, PairRules(tokenizer=processor.tokenizer, pair_style="loop"))
    collate = DataCollatorForVisionPreference(processor)
    as_text = load_pairs(pairs, processor)
    page_row, cut_row = read_pairs(pairs)
    assert cut_row["prefix"] == looping[:cut]

    # the page row (no prefix): the same batch from text as from messages
    (tmp_path / "messages").mkdir()
    (tmp_path / "messages" / "images").symlink_to(pairs / "images")
    (tmp_path / "messages" / "pairs.jsonl").write_text(json.dumps(page_row) + "\n")
    from_messages = collate([load_pairs(tmp_path / "messages")[0]])
    from_text = collate([as_text[0]])
    assert torch.equal(from_text["input_ids"], from_messages["input_ids"])
    assert torch.equal(from_text["completion_mask"], from_messages["completion_mask"])

    batch = collate([as_text[1]])
    tokenizer = processor.tokenizer
    chosen, rejected = (
        tokenizer.decode(ids[mask.bool()])
        for ids, mask in zip(batch["input_ids"], batch["completion_mask"], strict=True)
    )
    assert chosen == '"}<|im_end|>\n'
    assert rejected == " Nota fiscal Nota fiscal<|im_end|>\n"
    prompt = batch["input_ids"][0][
        ~batch["completion_mask"][0].bool() & batch["attention_mask"][0].bool()
    ]
    assert tokenizer.decode(prompt).endswith("assistant\n" + looping[:cut])

    args = DpoArgs(
        model=str(random_model),
        pairs=pairs,
        out=tmp_path / "models",
        max_steps=2,
        batch_size=2,
        sft_weight=1.0,
        threads=1,
    )
    trainer = build_trainer(args, tmp_path / "models" / "v")
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))


def test_keep_update_saves_that_fraction_of_the_trained_change(tmp_path, random_model, pairs):
    from training.model.loading import load_model

    args = DpoArgs(
        model=str(random_model),
        pairs=pairs,
        out=tmp_path / "models",
        max_steps=2,
        learning_rate=1e-2,
        keep_update=0.5,
        threads=1,
    )
    folder = tmp_path / "models" / "v"
    trainer = build_trainer(args, folder)
    trainer.train()
    trained = {n: p.detach().clone() for n, p in trainer.model.state_dict().items()}
    save_version(trainer, args, folder)

    base = load_model(random_model).state_dict()
    saved = load_model(folder).state_dict()
    moved = [n for n in saved if not torch.equal(trained[n], base[n])]
    assert moved
    for name in moved:
        assert torch.allclose(saved[name], (base[name] + trained[name]) / 2, atol=1e-6), name
    assert (
        json.loads((folder / "lineage.json").read_text())["hyperparameters"]["keep_update"] == 0.5
    )

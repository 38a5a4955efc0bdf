"""DPO on a tiny Qwen2.5-VL on CPU (full and LoRA): loss logged, every trainable parameter
moves, the version folder loads and carries its lineage; candidates and retrain end to end."""

from __future__ import annotations

import json

import pytest
import torch

from training.retrain.candidates import CandidateConfig, sample_candidates
from training.retrain.dpo import DpoArgs, build_trainer, run, save_version
from training.retrain.loop import RetrainConfig, retrain
from training.retrain.pairs import PairRules, build_pairs, sha256_file

from ..records import CLEAN, page_png, record, write_snapshot

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
    card = (folder / "README.md").read_text()
    assert lineage["dataset"]["records_sha256"] in card and "learning_rate" in card


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
    snapshot = write_snapshot(
        tmp_path / "snapshot",
        [
            (record("a"), None),
            (record("a", attempt=2), None),
            (record("b"), FEEDBACK),
        ],
    )
    config = CandidateConfig(snapshot, str(random_model), n=2, max_new_tokens=8, threads=1)
    assert sample_candidates(config) == 2  # page a once (both attempts share it); b has feedback
    lines = [json.loads(x) for x in (snapshot / "candidates.jsonl").read_text().splitlines()]
    assert [(c["page_key"], c["seed"], c["temperature"]) for c in lines] == [
        ("a#1", 0, 0.7),
        ("a#1", 1, 0.7),
    ]
    assert all(isinstance(c["degenerate"], bool) and c["tokens"] <= 8 for c in lines)
    assert sample_candidates(config) == 0  # already sampled

    again = tmp_path / "again"
    write_snapshot(again, [(record("a"), None)])
    sample_candidates(CandidateConfig(again, str(random_model), n=2, max_new_tokens=8, threads=1))
    assert [
        json.loads(x)["text"] for x in (again / "candidates.jsonl").read_text().splitlines()
    ] == [c["text"] for c in lines]


def test_retrain_from_redis_to_an_evaluated_version(
    tmp_path, random_model, redis_client, key_prefix
):
    stream = key_prefix + "failures"
    for n, (rid, extra) in enumerate(
        [("a", {}), ("b", {"recovered": True, "final_output": CLEAN})]
    ):
        rec = record(rid, image_sha256=f"img{n}", **extra)
        redis_client.set(f"{key_prefix}image:img{n}", page_png(n))
        redis_client.xadd(stream, rec.to_fields())
    redis_client.hset(f"{key_prefix}feedback:a", str(FEEDBACK.get("page", 1)), json.dumps(FEEDBACK))
    config = RetrainConfig(
        model=str(random_model),
        work=tmp_path / "work",
        out=tmp_path / "models",
        stream_key=stream,
        key_prefix=key_prefix,
        max_steps=2,
        eval_per_kind=1,
        eval_kinds="line",
        max_new_tokens=4,
        threads=1,
    )
    result = retrain(config, redis_client)
    assert result["export"]["written"] == 2
    assert result["pairs"]["by_source"] == {"feedback": 1, "recovered": 1}
    folder = tmp_path / "models" / f"{random_model.name}-dpo-v1"
    assert result["model"] == str(folder)
    lineage = json.loads((folder / "lineage.json").read_text())
    assert set(lineage["eval"]["models"]) == {str(random_model), str(folder)}
    assert "degeneration_rate" in (folder / "README.md").read_text()

"""Retrain: one round of the closed loop, from Redis to a new model version only if it is better.

    ocrguard-train retrain --redis-url redis://127.0.0.1:6379/0 --model models/ocrguard-tiny \
        --work data/retrain --out models --config training/recipes/dpo/ocrguard-tiny.yaml

Stages: export (the failure, correction and kept-page streams through consumer groups) ->
candidates (N samples per page, labelled by the guard) -> pairs -> DPO (a candidate version
under ``--work``) -> the serving and the candidate model side by side on the same held-out
pages (the degeneration-prone traffic greedily and sampled, the standard kinds greedily) ->
the release rule (training/evaluation/compare.py): only a better candidate is written to
``--out``. Each stage leaves its files under ``--work`` (``failures/``, ``pairs/``,
``versions/``), and the export accumulates, so a second round (on the new model, with the
traffic it served since) works the same way.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

from ..evaluation.compare import ReleaseRule, compare
from ..model.release import save_bf16
from .choice import PairRules
from .export import ExportConfig, export
from .judges import JudgeName, make_judge
from .pairs import REPLAY_FILE, build_pairs, check_pair_style, check_replay, report

logger = logging.getLogger(__name__)


@dataclass
class RetrainConfig:
    model: str = field(default="models/ocrguard-tiny", metadata={"help": "the serving model"})
    work: Path = field(
        default=Path("data/retrain"), metadata={"help": "snapshot, pairs, candidate versions"}
    )
    out: Path = field(default=Path("models"), metadata={"help": "better versions go under it"})
    redis_url: str = field(default="redis://127.0.0.1:6379/0", metadata={"help": "Redis to read"})
    stream_key: str = field(default="ocrguard:failures", metadata={"help": "the failure stream"})
    key_prefix: str = field(default="ocrguard:", metadata={"help": "prefix of the other keys"})
    group: str = field(default="training", metadata={"help": "consumer group"})
    min_idle_ms: int = field(default=600_000, metadata={"help": "claim entries idle this long"})
    candidates: int = field(default=4, metadata={"help": "samples per page (0: none)"})
    candidate_temperature: float = field(default=1.0, metadata={"help": "their temperature"})
    max_clean_pages: int = field(default=500, metadata={"help": "kept clean pages sampled at most"})
    judge: str = field(default="structural", metadata={"help": "reference | llm | structural"})
    llm_url: str = field(
        default="http://127.0.0.1:8000/v1", metadata={"help": "llm judge endpoint"}
    )
    llm_model: str = field(
        default="judge", metadata={"help": "llm judge model (key: $OPENAI_API_KEY)"}
    )
    min_pairs: int = field(default=1, metadata={"help": "skip training below this many pairs"})
    anchor_ratio: float = field(
        default=0.0,
        metadata={"help": "NLL-only anchor rows (kept clean pages) per pair (0: none)"},
    )
    anchor_agreement: float = field(
        default=0.9,
        metadata={"help": "an anchor's samples must agree this much with its output (1 - CER)"},
    )
    replay: Path | None = field(
        default=None,
        metadata={"help": "supervised pages of the base model (samples.jsonl, `training synth`)"},
    )
    replay_ratio: float = field(
        default=0.0, metadata={"help": "NLL-only replay rows (from --replay) per pair (0: none)"}
    )
    pair_style: str = field(
        default="whole",
        metadata={
            "help": "whole: chosen against each whole degenerate text (published); loop: "
            "only the step into the loop is judged; loop_or_whole: loop, texts without a "
            "usable cut paired whole (choice.PairRules.pair_style)"
        },
    )
    replay_synth: int = field(
        default=0,
        metadata={
            "help": "a --replay folder without samples.jsonl is first written with this many "
            "pages of the synthetic generator at seed 0, the embedded model's SFT data (0: never)"
        },
    )
    lora: bool = field(default=False, metadata={"help": "LoRA (merged) instead of full DPO"})
    beta: float = field(default=0.1, metadata={"help": "DPO beta"})
    learning_rate: float = field(default=5e-6, metadata={"help": "peak learning rate"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the pairs"})
    max_steps: int = field(default=-1, metadata={"help": "stop after this many steps (-1: epochs)"})
    batch_size: int = field(default=4, metadata={"help": "pairs per step"})
    sft_weight: float = field(
        default=0.0, metadata={"help": "weight of an NLL term on the chosen side (RPO; 0: off)"}
    )
    keep_update: float = field(
        default=1.0,
        metadata={"help": "fraction of the DPO update kept over the base (WiSE-FT; 1: all)"},
    )
    eval_per_kind: int = field(
        default=50, metadata={"help": "standard held-out pages per kind (0: no eval)"}
    )
    eval_kinds: str = field(
        default="chars,line,block,table,receipt,form", metadata={"help": "standard kinds"}
    )
    eval_prone: int = field(
        default=40, metadata={"help": "held-out prone pages per prone kind (greedy and T=0.7)"}
    )
    min_reduction: float = field(
        default=0.0, metadata={"help": "relative prone degeneration cut the candidate must beat"}
    )
    max_cer_increase: float = field(
        default=0.005, metadata={"help": "most a standard kind's CER may rise"}
    )
    max_new_tokens: int = field(default=256, metadata={"help": "evaluation token limit"})
    eval_batch_size: int = field(default=20, metadata={"help": "pages decoded together"})
    threads: int = field(default=2, metadata={"help": "torch CPU threads"})


def main(config: RetrainConfig) -> int:
    result = retrain(config)
    print(
        json.dumps(
            {k: result.get(k) for k in ("pairs", "comparison", "model", "released")},
            indent=2,
            default=str,
        )
    )
    return 0


def retrain(config: RetrainConfig, client: redis.Redis | None = None) -> dict[str, Any]:
    """Run every stage; return what each produced (``released``: the new version, or None)."""
    work = Path(config.work)
    snapshot, pairs = work / "failures", work / "pairs"
    client = client or redis.Redis.from_url(config.redis_url)
    _write_replay(config)
    exported = export(
        client,
        ExportConfig(
            out=snapshot,
            redis_url=config.redis_url,
            stream_key=config.stream_key,
            key_prefix=config.key_prefix,
            group=config.group,
            min_idle_ms=config.min_idle_ms,
        ),
    )
    result: dict[str, Any] = {"export": asdict(exported), "model": None, "released": None}
    if config.candidates > 0:
        from .candidates import CandidateConfig, sample_candidates

        result["candidates"] = sample_candidates(
            CandidateConfig(
                snapshot,
                config.model,
                n=config.candidates,
                temperature=config.candidate_temperature,
                max_new_tokens=config.max_new_tokens,
                max_clean_pages=config.max_clean_pages,
                threads=config.threads,
            )
        )
    stats = build_pairs(snapshot, pairs, _rules(config))
    print(report(stats))
    result["pairs"] = stats.as_dict()
    if stats.rows < config.min_pairs:
        logger.warning("only %d pairs (< %d): no training", stats.rows, config.min_pairs)
        return result
    folder = _train(config, pairs, work / "versions")
    result["model"] = str(folder)
    if config.eval_per_kind > 0:
        result.update(_evaluate(config, folder))
    (folder / "retrain.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def _write_replay(config: RetrainConfig) -> None:
    """The embedded model's supervised pages, drawn again: its SFT recipes train on the
    synthetic generator at seed 0 (training/recipes/ocrguard-tiny/), the evaluation kinds."""
    if config.replay is None or config.replay_synth <= 0:
        return
    folder = Path(config.replay)
    if (folder / REPLAY_FILE).exists():
        return
    from ..model.synth import parse_kinds, write_dataset

    logger.info("writing %d replay pages to %s", config.replay_synth, folder)
    write_dataset(folder, 0, config.replay_synth, parse_kinds(config.eval_kinds))


def _rules(config: RetrainConfig) -> PairRules:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.model, local_files_only=True)
    judge_name: JudgeName = config.judge  # type: ignore[assignment]
    judge = make_judge(
        judge_name,
        tokenizer=tokenizer,
        llm_url=config.llm_url,
        llm_model=config.llm_model,
        llm_api_key=os.environ.get("OPENAI_API_KEY"),
    )
    return PairRules(
        judge,
        tokenizer=tokenizer,
        anchor_ratio=config.anchor_ratio,
        anchor_agreement=config.anchor_agreement,
        replay=check_replay(config.replay, config.replay_ratio),
        replay_ratio=config.replay_ratio,
        pair_style=check_pair_style(config.pair_style),  # type: ignore[arg-type]
    )


def _train(config: RetrainConfig, pairs: Path, versions: Path) -> Path:
    from .dpo import DpoArgs
    from .dpo import run as train

    args = DpoArgs(
        model=config.model,
        pairs=pairs,
        out=versions,
        lora=config.lora,
        beta=config.beta,
        learning_rate=config.learning_rate,
        epochs=config.epochs,
        max_steps=config.max_steps,
        batch_size=config.batch_size,
        sft_weight=config.sft_weight,
        keep_update=config.keep_update,
        threads=config.threads,
    )
    return train(args)


def _evaluate(config: RetrainConfig, folder: Path) -> dict[str, Any]:
    """The candidate against the serving model, and the release when it is better."""
    from ..evaluation.heldout import evaluate_models
    from .dpo import add_eval

    evaluation = evaluate_models(
        [config.model, str(folder)],
        tuple(config.eval_kinds.split(",")),
        config.eval_per_kind,
        config.max_new_tokens,
        config.threads,
        config.eval_batch_size,
        prone_per_kind=config.eval_prone,
    )
    rule = ReleaseRule(config.min_reduction, config.max_cer_increase)
    comparison = compare(evaluation, config.model, str(folder), rule)
    add_eval(folder, evaluation, comparison.as_dict())
    released = None
    if comparison.better:
        released = Path(config.out) / folder.name
        _release(folder, released)
        logger.info("better than %s: released %s", config.model, released)
    else:
        logger.warning("not released: %s", "; ".join(comparison.reasons))
    return {
        "eval": evaluation,
        "comparison": comparison.as_dict(),
        "released": str(released) if released else None,
    }


def _release(folder: Path, target: Path) -> None:
    """The candidate's inference files into ``target``, weights in bfloat16."""
    target.mkdir(parents=True, exist_ok=True)
    for item in folder.iterdir():
        if item.is_file() and item.name != "model.safetensors":
            shutil.copy2(item, target / item.name)  # the LoRA adapter folder stays behind
    save_bf16(folder / "model.safetensors", target / "model.safetensors")

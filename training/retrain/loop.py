"""Retrain: export -> (candidates) -> pairs -> dpo -> eval, one command from Redis to a new version.

    python -m training retrain --redis-url redis://127.0.0.1:6379/0 --model models/ocrguard-tiny \\
        --work data/retrain --out models --lora --max-steps 200 --eval-per-kind 50

Each stage writes to ``--work`` (``failures/``, ``pairs/``) so a failed run can be resumed
stage by stage with the single commands. The export accumulates: the snapshot keeps every
failure exported so far and the pairs are rebuilt from all of it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from .export import ExportConfig, export
from .judges import JudgeName, make_judge
from .pairs import PairRules, build_pairs, report

logger = logging.getLogger(__name__)


@dataclass
class RetrainConfig:
    model: str = field(default="models/ocrguard-tiny", metadata={"help": "base model folder"})
    work: Path = field(
        default=Path("data/retrain"), metadata={"help": "snapshot and pairs go here"}
    )
    out: Path = field(default=Path("models"), metadata={"help": "new versions go under it"})
    redis_url: str = field(default="redis://127.0.0.1:6379/0", metadata={"help": "Redis to read"})
    stream_key: str = field(default="ocrguard:failures", metadata={"help": "the failure stream"})
    key_prefix: str = field(default="ocrguard:", metadata={"help": "prefix of image/feedback keys"})
    group: str = field(default="training", metadata={"help": "consumer group"})
    min_idle_ms: int = field(default=600_000, metadata={"help": "claim entries idle this long"})
    candidates: int = field(
        default=0, metadata={"help": "samples per page lacking a chosen (0: none)"}
    )
    judge: str = field(default="structural", metadata={"help": "reference | llm | structural"})
    llm_url: str = field(
        default="http://127.0.0.1:8000/v1", metadata={"help": "llm judge endpoint"}
    )
    llm_model: str = field(
        default="judge", metadata={"help": "llm judge model (key: $OPENAI_API_KEY)"}
    )
    min_pairs: int = field(default=1, metadata={"help": "skip training below this many pairs"})
    lora: bool = field(default=False, metadata={"help": "LoRA (merged) instead of full DPO"})
    beta: float = field(default=0.1, metadata={"help": "DPO beta"})
    learning_rate: float = field(default=5e-6, metadata={"help": "peak learning rate"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the pairs"})
    max_steps: int = field(default=-1, metadata={"help": "stop after this many steps (-1: epochs)"})
    eval_per_kind: int = field(
        default=50, metadata={"help": "held-out pages per kind (0: no eval)"}
    )
    eval_kinds: str = field(
        default="line,block,table,receipt,form", metadata={"help": "page kinds"}
    )
    max_new_tokens: int = field(default=256, metadata={"help": "evaluation token limit"})
    threads: int = field(default=2, metadata={"help": "torch CPU threads"})


def main(config: RetrainConfig) -> int:
    result = retrain(config)
    print(f"new model version: {result['model']}")
    return 0


def retrain(config: RetrainConfig, client: redis.Redis | None = None) -> dict[str, Any]:
    """Run every stage; return what each produced (the new version is ``result['model']``)."""
    from .dpo import DpoArgs, add_eval
    from .dpo import run as train

    snapshot, pairs = Path(config.work) / "failures", Path(config.work) / "pairs"
    client = client or redis.Redis.from_url(config.redis_url)
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
    result: dict[str, Any] = {"export": exported.__dict__}
    if config.candidates > 0:
        from .candidates import CandidateConfig, sample_candidates

        result["candidates"] = sample_candidates(
            CandidateConfig(snapshot, config.model, n=config.candidates, threads=config.threads)
        )
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
    stats = build_pairs(snapshot, pairs, PairRules(judge, tokenizer=tokenizer))
    print(report(stats))
    result["pairs"] = stats.as_dict()
    if stats.rows < config.min_pairs:
        logger.warning("only %d pairs (< %d): no training", stats.rows, config.min_pairs)
        result["model"] = None
        return result
    args = DpoArgs(
        model=config.model,
        pairs=pairs,
        out=config.out,
        lora=config.lora,
        beta=config.beta,
        learning_rate=config.learning_rate,
        epochs=config.epochs,
        max_steps=config.max_steps,
        threads=config.threads,
    )
    folder = train(args)
    result["model"] = str(folder)
    if config.eval_per_kind > 0:
        from ..evaluation.heldout import evaluate_models

        evaluation = evaluate_models(
            [config.model, str(folder)],
            tuple(config.eval_kinds.split(",")),
            config.eval_per_kind,
            config.max_new_tokens,
            config.threads,
        )
        add_eval(folder, evaluation)
        result["eval"] = evaluation
    (folder / "retrain.json").write_text(json.dumps(result, indent=2, default=str))
    return result

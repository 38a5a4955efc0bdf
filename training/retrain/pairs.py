"""Pairs: failure snapshot -> DPO rows {images, prompt, chosen, rejected} for TRL.

    python -m training pairs --snapshot data/failures --out data/pairs --judge structural

Rejected is the degenerate output. Chosen, in order of trust: the human correction sent to
the feedback endpoint; the recovered output, when it parses as the schema and does not trip
the guard; the best sampled candidate (``python -m training candidates``) by a judge. The
rows are written without ``datasets`` (``pairs.jsonl`` + ``images/``); ``load_pairs`` makes
the ``datasets.Dataset`` that ``trl.DPOTrainer`` takes with the processor as
``processing_class``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from app.failure_record import FailureRecord
from app.labeler import CHARACTERS, Tokenizer
from app.prompt import OUTPUT_FIELDS, PageFields, parse_output

from .export import IMAGES_DIR, RECORDS_FILE, read_snapshot
from .judges import Judge, JudgeName, degenerate, make_judge

logger = logging.getLogger(__name__)

PAIRS_FILE = "pairs.jsonl"
MANIFEST_FILE = "manifest.json"
CANDIDATES_FILE = "candidates.jsonl"


@dataclass
class PairsConfig:
    """Which snapshot, judged how, into which pairs folder."""

    snapshot: Path = field(default=Path("data/failures"), metadata={"help": "export folder"})
    out: Path = field(default=Path("data/pairs"), metadata={"help": "pairs folder to write"})
    candidates: Path | None = field(
        default=None, metadata={"help": "candidates.jsonl (default: the snapshot's)"}
    )
    judge: str = field(
        default="structural", metadata={"help": "scores candidates: reference, llm or structural"}
    )
    min_score: float = field(default=0.5, metadata={"help": "a candidate needs this score"})
    tokenizer: str | None = field(
        default=None,
        metadata={"help": "model folder whose tokenizer the guard reads (default: characters)"},
    )
    llm_url: str = field(
        default="http://127.0.0.1:8000/v1",
        metadata={"help": "OpenAI-compatible base URL of the llm judge"},
    )
    llm_model: str = field(default="judge", metadata={"help": "model name sent to the llm judge"})
    llm_api_key: str | None = field(
        default_factory=lambda: os.environ.get("OPENAI_API_KEY"),
        metadata={"help": "bearer token of the llm judge (default: $OPENAI_API_KEY)"},
    )

    def __post_init__(self) -> None:
        self.snapshot, self.out = Path(self.snapshot), Path(self.out)
        if self.judge not in get_args(JudgeName):
            raise ValueError(f"judge {self.judge!r}: one of {', '.join(get_args(JudgeName))}")


def main(config: PairsConfig) -> int:
    tokenizer: Tokenizer = CHARACTERS
    if config.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(config.tokenizer, local_files_only=True)
    judge = make_judge(
        config.judge,  # type: ignore[arg-type]
        tokenizer=tokenizer,
        llm_url=config.llm_url,
        llm_model=config.llm_model,
        llm_api_key=config.llm_api_key,
    )
    rules = PairRules(judge, config.min_score, tokenizer)
    print(report(build_pairs(config.snapshot, config.out, rules, config.candidates)))
    return 0


Source = Literal["feedback", "recovered", "candidate"]
DropReason = Literal[
    "no_image",  # the page image expired before export: nothing to condition on
    "no_chosen",  # no correction, no clean recovery, no candidates
    "chosen_equals_rejected",  # the only chosen on offer is the degenerate output itself
    "chosen_degenerate",  # the chosen on offer trips the guard
    "chosen_not_schema",  # the chosen on offer is not the JSON schema
    "judge_abstained",  # candidates exist but the judge scored none of them
    "judge_below_min",  # the best candidate scored under the minimum
]


@dataclass(frozen=True)
class Choice:
    """What ``choose`` decided for one record: a chosen text, or why there is none."""

    chosen: str | None
    source: Source | None = None
    score: float | None = None
    reason: DropReason | None = None


@dataclass
class PairRules:
    """How a chosen is picked and checked."""

    judge: Judge | None = None
    """Scores candidates; without one, candidates are not used."""
    min_score: float = 0.5
    """A candidate needs at least this score to be chosen."""
    tokenizer: Tokenizer = CHARACTERS
    """What the guard reads a chosen text with (the model's tokenizer when known)."""
    trust_feedback: bool = True
    """Human corrections skip the guard and schema checks: a person who typed a table with
    repeated rows meant it, and the guard is the heuristic here."""


def feedback_json(feedback: dict[str, Any] | None, page: int) -> str | None:
    """The correction for ``page`` as the schema's JSON, or None if there is none for it."""
    if not feedback or int(feedback.get("page", 1)) != page:
        return None
    if all(feedback.get(f) is None for f in OUTPUT_FIELDS):
        return None
    return PageFields(**{f: feedback.get(f) or "" for f in OUTPUT_FIELDS}).to_json()


def choose(
    record: FailureRecord,
    feedback: dict[str, Any] | None,
    candidates: list[dict[str, Any]],
    rules: PairRules,
    reference: str | None = None,
    image_png: bytes | None = None,
) -> Choice:
    """The chosen side of the pair whose rejected side is ``record.output``."""
    rejected = record.output.strip()
    failures: list[DropReason] = []
    corrected = feedback_json(feedback, record.page)
    if corrected is not None:
        problem = _problem(corrected, rejected, rules, trusted=rules.trust_feedback)
        if problem is None:
            return Choice(corrected, "feedback", 1.0)
        failures.append(problem)
    if record.recovered and record.final_output.strip():
        problem = _problem(record.final_output, rejected, rules)
        if problem is None:
            return Choice(record.final_output, "recovered", 1.0)
        failures.append(problem)
    usable = []
    for candidate in candidates:
        text = candidate["text"]
        problem = "chosen_degenerate" if candidate.get("degenerate") else None
        problem = problem or _problem(text, rejected, rules)
        if problem is None:
            usable.append(text)
        else:
            failures.append(problem)
    if usable and rules.judge is not None:
        scored = [
            (s, text)
            for text in usable
            if (s := rules.judge.score(text, reference=reference, image_png=image_png)) is not None
        ]
        if not scored:
            return Choice(None, reason="judge_abstained")
        score, best = max(scored, key=lambda item: item[0])
        if score >= rules.min_score:
            return Choice(best, "candidate", score)
        return Choice(None, reason="judge_below_min")
    if usable:
        return Choice(None, reason="no_chosen")
    return Choice(None, reason=failures[0] if failures else "no_chosen")


def _problem(
    text: str, rejected: str, rules: PairRules, trusted: bool = False
) -> DropReason | None:
    if text.strip() == rejected:
        return "chosen_equals_rejected"
    if trusted:
        return None
    if parse_output(text) is None:
        return "chosen_not_schema"
    if degenerate(text, rules.tokenizer) is not None:
        return "chosen_degenerate"
    return None


def needs_candidates(line: dict[str, Any], rules: PairRules) -> bool:
    """Whether a snapshot line lacks a trusted chosen (correction or clean recovery)."""
    record = FailureRecord(**line["record"])
    choice = choose(record, line.get("feedback"), [], PairRules(None, tokenizer=rules.tokenizer))
    return choice.chosen is None and line.get("image") is not None


def page_key(record: dict[str, Any]) -> str:
    """Candidates are per page: every attempt of a page shares them."""
    return f"{record['request_id']}#{record['page']}"


def read_candidates(path: Path) -> dict[str, list[dict[str, Any]]]:
    by_page: dict[str, list[dict[str, Any]]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                by_page.setdefault(item["page_key"], []).append(item)
    return by_page


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class PairStats:
    records: int = 0
    rows: int = 0
    by_source: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "rows": self.rows,
            "by_source": dict(self.by_source),
            "dropped": dict(self.dropped),
        }


def build_pairs(
    snapshot: Path, out: Path, rules: PairRules, candidates: Path | None = None
) -> PairStats:
    """Write ``out/pairs.jsonl``, ``out/images/`` and ``out/manifest.json``; return counts."""
    snapshot, out = Path(snapshot), Path(out)
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    by_page = read_candidates(candidates or snapshot / CANDIDATES_FILE)
    stats = PairStats()
    rows = []
    for line in read_snapshot(snapshot):
        stats.records += 1
        record = FailureRecord(**line["record"])
        if line.get("image") is None:
            stats.dropped["no_image"] += 1
            continue
        image_path = snapshot / line["image"]
        choice = choose(
            record,
            line.get("feedback"),
            by_page.get(page_key(line["record"]), []),
            rules,
            reference=line.get("reference"),
            image_png=image_path.read_bytes() if rules.judge is not None else None,
        )
        if choice.chosen is None:
            stats.dropped[choice.reason or "no_chosen"] += 1
            continue
        _link(image_path, out / line["image"])
        stats.by_source[choice.source] += 1
        rows.append(
            {
                "images": [line["image"]],
                "prompt": record.page_prompt.messages(),
                "chosen": [{"role": "assistant", "content": choice.chosen}],
                "rejected": [{"role": "assistant", "content": record.output}],
                "meta": {
                    "request_id": record.request_id,
                    "page": record.page,
                    "attempt": record.attempt,
                    "source": choice.source,
                    "score": choice.score,
                    "model_id": record.model_id,
                    "prompt_version": record.prompt_version,
                    "guard_version": record.guard_version,
                    "verdict": record.verdict.get("kind"),
                },
            }
        )
    stats.rows = len(rows)
    tmp = out / (PAIRS_FILE + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, out / PAIRS_FILE)
    manifest = {
        "snapshot": str(snapshot),
        "records_sha256": sha256_file(snapshot / RECORDS_FILE),
        "pairs_sha256": sha256_file(out / PAIRS_FILE),
        "judge": getattr(rules.judge, "name", None),
        "min_score": rules.min_score,
        **stats.as_dict(),
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return stats


def report(stats: PairStats) -> str:
    """Counts and drop reasons, one per line, for the CLI."""
    lines = [f"{stats.rows} pairs from {stats.records} records"]
    lines += [f"  chosen from {source}: {n}" for source, n in sorted(stats.by_source.items())]
    lines += [f"  dropped ({reason}): {n}" for reason, n in sorted(stats.dropped.items())]
    return "\n".join(lines)


def _link(source: Path, target: Path) -> None:
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:  # another filesystem: copy
        shutil.copyfile(source, target)


def read_pairs(folder: Path) -> list[dict[str, Any]]:
    path = Path(folder) / PAIRS_FILE
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def load_pairs(folder: Path):
    """The pairs as a ``datasets.Dataset`` of the columns DPOTrainer reads for vision
    models: ``images`` (decoded to PIL on access), ``prompt``, ``chosen``, ``rejected``."""
    import datasets

    folder = Path(folder).resolve()
    rows = [
        {
            "images": [str(folder / path) for path in row["images"]],
            "prompt": row["prompt"],
            "chosen": row["chosen"],
            "rejected": row["rejected"],
        }
        for row in read_pairs(folder)
    ]
    if not rows:
        raise ValueError(f"{folder / PAIRS_FILE} holds no pairs: nothing to train on")
    dataset = datasets.Dataset.from_list(rows)
    return dataset.cast_column("images", datasets.List(datasets.Image()))

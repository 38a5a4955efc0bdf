"""Pairs: a snapshot -> DPO rows {images, prompt, chosen, rejected} for TRL.

    python -m training pairs --snapshot data/failures --out data/pairs --judge structural

One row per degenerate text of a page (choice.py says which chosen, which rejected): the
live degenerate outputs of caught pages and the degenerate candidates sampled on caught and
on kept clean pages. The rows are written without ``datasets`` (``pairs.jsonl`` +
``images/``); ``load_pairs`` makes the ``datasets.Dataset`` that ``trl.DPOTrainer`` takes
with the processor as ``processing_class``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from app.labeler import CHARACTERS, Tokenizer
from app.prompt import OUTPUT_FIELDS, PageFields, PagePrompt, parse_output

from .cases import Degenerate, PageCase, gather
from .choice import Choice, PairRules, PairStyle, choose_for, rejected_of
from .export import IMAGES_DIR, RECORDS_FILE
from .judges import JudgeName, degenerate, make_judge

logger = logging.getLogger(__name__)

PAIRS_FILE = "pairs.jsonl"
MANIFEST_FILE = "manifest.json"
REPLAY_FILE = "samples.jsonl"  # what `python -m training synth` writes
# rows whose chosen and rejected are the same text: the DPO term gives them no gradient
NLL_ONLY_SOURCES = ("anchor", "replay", "page")
# how far a loop-style cut may move back to land where the tokenizer splits the text the
# same way whole and cut, and where the JSON can be closed (not inside an escape)
_MAX_CUT_SHIFT = 8
# a field's string opening: `"text":"` (compact, as ocrguard's prompt asks) or `"text": "`
_FIELD_OPENING = re.compile(r'"(' + "|".join(OUTPUT_FIELDS) + r')"\s*:\s*"')


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
            "help": "whole: chosen against each whole degenerate text (published); loop: the "
            "text up to the loop's second copy is shared, chosen closes the JSON there, the "
            "page's chosen text is an NLL-only row; loop_or_whole: loop, texts without a "
            "usable cut paired whole"
        },
    )

    def __post_init__(self) -> None:
        self.snapshot, self.out = Path(self.snapshot), Path(self.out)
        check_pair_style(self.pair_style)
        self.replay = check_replay(self.replay, self.replay_ratio)
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
    rules = PairRules(
        judge,
        config.min_score,
        tokenizer,
        anchor_ratio=config.anchor_ratio,
        anchor_agreement=config.anchor_agreement,
        replay=config.replay,
        replay_ratio=config.replay_ratio,
        pair_style=config.pair_style,  # type: ignore[arg-type]
    )
    print(report(build_pairs(config.snapshot, config.out, rules, config.candidates)))
    return 0


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class PairStats:
    pages: int = 0
    rows: int = 0
    by_source: Counter = field(default_factory=Counter)
    """Rows by where their chosen came from."""
    by_rejected: Counter = field(default_factory=Counter)
    """Rows by where their rejected came from (live, candidate)."""
    dropped: Counter = field(default_factory=Counter)
    """Pages without pairs, by reason."""
    uncut: int = 0
    """Loop style: degenerate texts left out because no cut point was known or usable."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "rows": self.rows,
            "by_source": dict(self.by_source),
            "by_rejected": dict(self.by_rejected),
            "dropped": dict(self.dropped),
            "uncut": self.uncut,
        }


def build_pairs(
    snapshot: Path, out: Path, rules: PairRules, candidates: Path | None = None
) -> PairStats:
    """Write ``out/pairs.jsonl``, ``out/images/`` and ``out/manifest.json``; return counts."""
    snapshot, out = Path(snapshot), Path(out)
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    stats = PairStats()
    rows, anchors = [], []
    for case in gather(snapshot, candidates):
        stats.pages += 1
        if case.image is None:
            stats.dropped["no_image"] += 1
            continue
        rejected = rejected_of(case)
        if not rejected:
            if rules.anchor_ratio > 0 and is_anchor(case, snapshot / case.image, rules):
                anchors.append(case)
            else:
                stats.dropped["no_rejected"] += 1
            continue
        image_path = snapshot / case.image
        image_png = image_path.read_bytes() if rules.judge is not None else None
        choice = choose_for(case, rules, image_png=image_png)
        if choice.chosen is None:
            stats.dropped[choice.reason or "no_chosen"] += 1
            continue
        _link(image_path, out / case.image)
        if rules.pair_style != "whole":
            rows += _loop_rows(case, choice, rejected, rules, stats)
            continue
        rows += [_whole_row(case, choice, item, stats) for item in rejected]
    pairs = len(rows) - stats.by_source["page"]
    rows += _anchor_rows(anchors, int(pairs * rules.anchor_ratio), snapshot, out, stats)
    if rules.replay is not None:
        rows += _replay_rows(Path(rules.replay), int(pairs * rules.replay_ratio), out, stats)
    stats.rows = len(rows)
    tmp = out / (PAIRS_FILE + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, out / PAIRS_FILE)
    records = snapshot / RECORDS_FILE
    manifest = {
        "snapshot": str(snapshot),
        "records_sha256": sha256_file(records) if records.exists() else None,
        "pairs_sha256": sha256_file(out / PAIRS_FILE),
        "judge": getattr(rules.judge, "name", None),
        "min_score": rules.min_score,
        "pair_style": rules.pair_style,
        **stats.as_dict(),
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return stats


def _whole_row(case: PageCase, choice: Choice, item, stats: PairStats) -> dict[str, Any]:
    """The published pair: the page's chosen text against one whole degenerate text."""
    stats.by_source[choice.source] += 1  # type: ignore[index]
    stats.by_rejected[item.origin] += 1
    return {
        "images": [case.image],
        "prompt": case.prompt.messages(),
        "chosen": [{"role": "assistant", "content": choice.chosen}],
        "rejected": [{"role": "assistant", "content": item.text}],
        "meta": {
            **case.meta,
            "source": choice.source,
            "score": choice.score,
            "rejected_from": item.origin,
            "verdict": item.kind,
        },
    }


def _loop_rows(
    case: PageCase, choice: Choice, rejected: list[Degenerate], rules: PairRules, stats: PairStats
) -> list[dict[str, Any]]:
    """Loop style: one NLL-only row of the page's chosen text, and for each degenerate text a
    pair that shares its text up to the loop's second copy (``prefix``, the start of the
    answer in the prompt): chosen closes the JSON there, rejected goes on with the loop."""
    assert choice.chosen is not None and case.image is not None
    rows = []
    for item in rejected:
        cut = cut_at_loop(item.text, item.split, rules.tokenizer)
        if cut is None:
            stats.uncut += 1
            if rules.pair_style == "loop_or_whole":
                rows.append(_whole_row(case, choice, item, stats))
            continue
        prefix, closing, loop = cut
        stats.by_source["cut"] += 1
        stats.by_rejected[item.origin] += 1
        rows.append(
            {
                "images": [case.image],
                "prompt": case.prompt.messages(),
                "prefix": prefix,
                "chosen": [{"role": "assistant", "content": closing}],
                "rejected": [{"role": "assistant", "content": loop}],
                "meta": {
                    **case.meta,
                    "source": "cut",
                    "rejected_from": item.origin,
                    "verdict": item.kind,
                    "cut_chars": len(prefix),
                },
            }
        )
    if any("prefix" in row for row in rows):  # taught beside a cut pair; a whole pair has it
        meta = {**case.meta, "chosen_from": choice.source, "score": choice.score}
        page = _nll_only_row("page", case.image, case.prompt.messages(), choice.chosen, meta, stats)
        rows.insert(0, page)
    return rows


def cut_at_loop(text: str, split: int | None, tokenizer: Tokenizer) -> tuple[str, str, str] | None:
    """``(prefix, closing, loop)``: ``text`` cut where its loop's second copy begins
    (``split`` characters, moved back at most a few characters), the text that closes the
    page JSON there, and the rest. The cut must fall inside a field's string, and the
    tokenizer must read prefix + closing and prefix + loop as it reads them apart (so that
    moving the prefix into the prompt leaves every token as the model wrote it). None when
    no such cut exists."""
    if split is None or not 0 < split < len(text):
        return None
    whole = tokenizer.encode(text, add_special_tokens=False)
    for at in range(split, max(0, split - _MAX_CUT_SHIFT), -1):
        prefix, loop = text[:at], text[at:]
        closing = closing_of(prefix)
        if closing is None:
            continue
        head = tokenizer.encode(prefix, add_special_tokens=False)
        if head + tokenizer.encode(loop, add_special_tokens=False) != whole:
            continue
        closed = tokenizer.encode(prefix + closing, add_special_tokens=False)
        if closed != head + tokenizer.encode(closing, add_special_tokens=False):
            continue
        return prefix, closing, loop
    return None


def closing_of(prefix: str) -> str | None:
    """What closes the page JSON cut at ``prefix``, when the cut is inside a field's string:
    the quote, the fields after it empty, the brace. None otherwise."""
    opened = list(_FIELD_OPENING.finditer(prefix))
    if not opened:
        return None
    after = OUTPUT_FIELDS[OUTPUT_FIELDS.index(opened[-1][1]) + 1 :]
    closing = '"' + "".join(f',"{name}":""' for name in after) + "}"
    return closing if parse_output(prefix + closing) is not None else None


def is_anchor(case: PageCase, image: Path, rules: PairRules) -> bool:
    """A kept clean page fit to anchor on: served cleanly (never caught), its output the
    schema's JSON and clean to the guard, its samples agreeing with it (the model reads the
    page rather than guesses), and its image holding text (on a text-free page any text
    written is invented: nothing there to hold the model to)."""
    if case.caught or not case.returned_clean or not case.returned.strip():
        return False
    served = parse_output(case.returned)
    if served is None or degenerate(case.returned, rules.tokenizer):
        return False
    if agreement(served, case.candidates) < rules.anchor_agreement:
        return False
    from PIL import Image

    from app.page_lines import count_text_lines

    with Image.open(image) as page:
        return count_text_lines(page) > 0


def agreement(served: PageFields, candidates: list[dict[str, Any]]) -> float:
    """Mean similarity (1 - CER) of the sampled candidates' text to the served one; 0 when
    nothing was sampled (the model's confidence is unknown)."""
    if not candidates:
        return 0.0
    from ..evaluation.cer import cer

    reference = served.transcription
    total = 0.0
    for candidate in candidates:
        fields = parse_output(candidate["text"])
        text = fields.transcription if fields is not None else candidate["text"]
        total += 1.0 - cer(text, reference) if reference else float(not text)
    return total / len(candidates)


def _anchor_rows(
    anchors: list[PageCase], count: int, snapshot: Path, out: Path, stats: PairStats
) -> list[dict[str, Any]]:
    """``count`` anchor rows, spread evenly over the anchor pages in stream order."""
    if count <= 0 or not anchors:
        return []
    step = max(1.0, len(anchors) / count)
    picked = [anchors[int(k * step)] for k in range(min(count, len(anchors)))]
    rows = []
    for case in picked:
        _link(snapshot / case.image, out / case.image)  # type: ignore[operator]
        rows.append(
            _nll_only_row(
                "anchor", case.image, case.prompt.messages(), case.returned, case.meta, stats
            )
        )
    return rows


def _nll_only_row(
    source: str, image: str, prompt: list, text: str, meta: dict[str, Any], stats: PairStats
) -> dict[str, Any]:
    """A row whose chosen and rejected are both ``text``: the DPO term gives it no gradient,
    only the NLL term (``sft_weight``) acts on it."""
    stats.by_source[source] += 1
    stats.by_rejected[source] += 1
    message = [{"role": "assistant", "content": text}]
    return {
        "images": [image],
        "prompt": prompt,
        "chosen": message,
        "rejected": message,
        "meta": {**meta, "source": source, "rejected_from": source},
    }


def check_pair_style(style: str) -> str:
    if style not in get_args(PairStyle):
        raise ValueError(f"pair_style {style!r}: one of {', '.join(get_args(PairStyle))}")
    return style


def check_replay(replay: Path | str | None, ratio: float) -> Path | None:
    """The replay folder, checked: it must hold ``samples.jsonl`` when rows are asked of it."""
    if ratio < 0:
        raise ValueError("replay_ratio must not be negative")
    if ratio > 0 and replay is None:
        raise ValueError("replay_ratio needs --replay (a folder written by `training synth`)")
    if replay is None:
        return None
    replay = Path(replay)
    if not (replay / REPLAY_FILE).exists():
        raise ValueError(
            f"--replay {replay} holds no {REPLAY_FILE}: write it with `training synth`"
        )
    return replay


def _replay_rows(folder: Path, count: int, out: Path, stats: PairStats) -> list[dict[str, Any]]:
    """``count`` rehearsal rows drawn from the replay folder's samples (seeded): ocrguard's
    own prompt (the one supervised training used), the ground truth as chosen and rejected."""
    if count <= 0:
        return []
    lines = (folder / REPLAY_FILE).read_text(encoding="utf-8").splitlines()
    samples = [json.loads(line) for line in lines if line.strip()]
    if not samples:
        raise ValueError(f"{folder / REPLAY_FILE} holds no samples")
    # drawn, not strided: a stride would alias with the kinds a synth folder cycles through
    chosen = sorted(random.Random(0).sample(range(len(samples)), min(count, len(samples))))
    picked = [samples[k] for k in chosen]
    prompt = PagePrompt().messages()
    rows = []
    for sample in picked:
        image = f"{IMAGES_DIR}/replay-{Path(sample['image']).name}"
        _link(folder / sample["image"], out / image)
        meta = {k: sample.get(k) for k in ("kind", "seed", "index")}
        rows.append(_nll_only_row("replay", image, prompt, sample["target"], meta, stats))
    return rows


def nll_only_rows(by_source: dict[str, int]) -> dict[str, int]:
    """Rows of a training set that only the NLL term acts on (chosen = rejected), by kind."""
    return {source: by_source.get(source, 0) for source in NLL_ONLY_SOURCES}


def report(stats: PairStats) -> str:
    """Counts and drop reasons, one per line, for the CLI."""
    extra = nll_only_rows(stats.by_source)
    lines = [f"{stats.rows - sum(extra.values())} pairs from {stats.pages} pages"]
    if extra["anchor"]:
        lines[0] += f", and {extra['anchor']} anchor rows (NLL only)"
    if extra["replay"]:
        lines[0] += f", and {extra['replay']} replay rows (NLL only)"
    if extra["page"]:
        lines[0] += f", and {extra['page']} page rows (the pages' chosen text, NLL only)"
    if stats.uncut:
        whole = sum(n for source, n in stats.by_source.items() if source not in ("cut", *extra))
        fate = f"paired whole: {whole}" if whole else "left out"
        lines.append(f"  degenerate texts without a usable cut ({fate}): {stats.uncut}")
    lines += [f"  chosen from {source}: {n}" for source, n in sorted(stats.by_source.items())]
    lines += [f"  rejected from {origin}: {n}" for origin, n in sorted(stats.by_rejected.items())]
    lines += [f"  pages dropped ({reason}): {n}" for reason, n in sorted(stats.dropped.items())]
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


def load_pairs(folder: Path, processor=None):
    """The pairs as a ``datasets.Dataset`` of the columns DPOTrainer reads for vision
    models: ``images`` (decoded to PIL on access), ``prompt``, ``chosen``, ``rejected``.

    Rows are chat messages, which TRL renders with the processor's chat template. Loop-style
    rows carry a ``prefix``, the start of the answer both sides share, which a chat message
    cannot hold as a prompt: when any row has one, every row is rendered here (``processor``
    needed) as TRL renders messages, the prefix appended to the prompt's text."""
    import datasets

    folder = Path(folder).resolve()
    rows = read_pairs(folder)
    if not rows:
        raise ValueError(f"{folder / PAIRS_FILE} holds no pairs: nothing to train on")
    as_text = any(row.get("prefix") for row in rows)
    if as_text and processor is None:
        raise ValueError("loop-style pairs (with a prefix) need the processor to render them")
    dataset = datasets.Dataset.from_list(
        [
            {
                "images": [str(folder / path) for path in row["images"]],
                **(_rendered(row, processor) if as_text else _messages(row)),
            }
            for row in rows
        ]
    )
    return dataset.cast_column("images", datasets.List(datasets.Image()))


def _messages(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in ("prompt", "chosen", "rejected")}


def _rendered(row: dict[str, Any], processor) -> dict[str, str]:
    """``prompt``, ``chosen`` and ``rejected`` as text: the prompt rendered with the
    generation prompt, then the row's prefix; each side, the rest of the rendered
    conversation (the end-of-turn marker included), as TRL's ``apply_chat_template`` cuts it."""
    prefix = row.get("prefix") or ""
    prompt = processor.apply_chat_template(
        row["prompt"], add_generation_prompt=True, tokenize=False
    )
    start = prompt + prefix
    sides = {}
    for side in ("chosen", "rejected"):
        answer = [{"role": "assistant", "content": prefix + row[side][0]["content"]}]
        text = processor.apply_chat_template(row["prompt"] + answer, tokenize=False)
        if not text.startswith(start):
            raise ValueError(f"the chat template does not render {side} after its prompt")
        sides[side] = text[len(start) :]
    return {"prompt": start, **sides}

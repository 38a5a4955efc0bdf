"""A snapshot as pages: for each page, what the model wrote, what the request returned, what a
person said about it, and the candidates sampled on it.

Pages come from three files of an export: failure records (grouped by request and page:
every attempt's degenerate output), kept clean pages, and corrections (the latest per page
wins, whenever it was sent). A correction of a page that is in neither of the others (a page
corrected on the web page) is a page too, when its image was sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.failure_record import Correction, FailureRecord, PageSample
from app.prompt import PagePrompt

from .export import CORRECTIONS_FILE, PAGES_FILE, read_lines, read_snapshot

CANDIDATES_FILE = "candidates.jsonl"


@dataclass
class Degenerate:
    text: str
    origin: str
    """``live`` (what the service logged) or ``candidate`` (sampled during retraining)."""
    kind: str | None = None
    split: int | None = None
    """Characters before the loop's second copy, where the output turns degenerate (the
    verdict's ``onset + period``); None when unknown."""


@dataclass
class PageCase:
    key: str
    """``request_id#page``: candidates and corrections are per page."""
    request_id: str
    page: int
    image: str | None
    """The page image, relative to the snapshot (None: it expired before the export)."""
    prompt: PagePrompt
    meta: dict[str, Any]
    live: list[Degenerate] = field(default_factory=list)
    returned: str = ""
    """What the request returned for the page."""
    returned_clean: bool = False
    """The returned text came from a clean generation (a recovery, or a page never caught)."""
    correction: dict[str, str] | None = None
    """The latest correction's header/margin/footer/text."""
    candidates: list[dict[str, Any]] = field(default_factory=list)
    caught: bool = False
    """The guard caught the page live (it has failure records)."""


def page_key(request_id: str, page: int) -> str:
    return f"{request_id}#{page}"


def gather(snapshot: Path, candidates: Path | None = None) -> list[PageCase]:
    """Every page of ``snapshot``: caught ones first (in stream order), then kept clean
    pages, then pages known only by a correction."""
    snapshot = Path(snapshot)
    cases: dict[str, PageCase] = {}
    for line in read_snapshot(snapshot):
        record = FailureRecord(**line["record"])
        case = cases.get(page_key(record.request_id, record.page))
        if case is None:
            case = cases[page_key(record.request_id, record.page)] = _case(
                record.request_id, record.page, line.get("image"), record.page_prompt, record
            )
            case.caught = True
        split = record.repeat_chars if 0 < record.repeat_chars < len(record.output) else None
        case.live.append(Degenerate(record.output, "live", record.verdict.get("kind"), split))
        case.returned = record.final_output
        case.returned_clean = case.returned_clean or record.recovered
        if line.get("feedback"):
            case.correction = _fields(line["feedback"])
    for line in read_lines(snapshot, PAGES_FILE):
        sample = PageSample(**line["sample"])
        key = page_key(sample.request_id, sample.page)
        if key not in cases:
            case = cases[key] = _case(
                sample.request_id, sample.page, line.get("image"), sample.page_prompt, sample
            )
            case.returned, case.returned_clean = sample.output, True
    for line in sorted(
        read_lines(snapshot, CORRECTIONS_FILE), key=lambda x: x["correction"]["time"]
    ):
        correction = Correction(**line["correction"])
        key = page_key(correction.request_id, correction.page)
        case = cases.get(key)
        if case is None:
            case = cases[key] = _case(
                correction.request_id,
                correction.page,
                line.get("image"),
                correction.page_prompt,
                correction,
            )
            case.returned = correction.output
        elif case.image is None and line.get("image"):
            case.image = line["image"]
        case.correction = _fields(correction.fields)
    by_page = read_candidates(candidates or snapshot / CANDIDATES_FILE)
    for key, case in cases.items():
        case.candidates = by_page.get(key, [])
    return list(cases.values())


def _case(request_id, page, image, prompt, source) -> PageCase:
    meta = {
        "request_id": request_id,
        "page": page,
        "model_id": source.model_id,
        "model_revision": source.model_revision,
        "prompt_version": getattr(source, "prompt_version", None),
        "guard_version": getattr(source, "guard_version", None),
    }
    return PageCase(page_key(request_id, page), request_id, page, image, prompt, meta)


def _fields(values: dict[str, Any]) -> dict[str, str] | None:
    fields = {f: values.get(f) for f in ("header", "margin", "footer", "text")}
    if all(v is None for v in fields.values()):
        return None
    return {f: v or "" for f, v in fields.items()}


def read_candidates(path: Path) -> dict[str, list[dict[str, Any]]]:
    by_page: dict[str, list[dict[str, Any]]] = {}
    if Path(path).exists():
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                by_page.setdefault(item["page_key"], []).append(item)
    return by_page

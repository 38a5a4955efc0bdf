"""The failure record: the contract between the service and training (pure: no Redis, no metrics).

One Redis Stream entry per guard trip. The service writes it (``app/failure_log.py``), the
retraining pipeline reads it (``training/retrain/export.py``); both build every key from
``RedisKeys`` and every entry through ``FailureRecord.to_fields`` / ``from_fields``, which
refuses an entry of another schema version instead of misreading it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .guard.recovery import AttemptResult
from .prompt import PagePrompt

RECORD_SCHEMA = "2"
"""Bump when a field changes meaning or type; readers refuse other versions."""
READABLE_SCHEMAS = ("1", "2")
"""2 added ``prompt_system`` and ``prompt_image_first`` (a client's own prompt, OpenAI
endpoint); a version-1 entry reads with their defaults."""


class SchemaMismatch(ValueError):
    """A stream entry written under another schema version than this code reads."""


@dataclass(frozen=True)
class RedisKeys:
    """Every Redis key of the failure log, from one prefix and one stream name."""

    prefix: str = "ocrguard:"
    """Prefix of every key but the stream's."""
    stream: str = "ocrguard:failures"
    """The Redis Stream of failure records."""

    def image(self, sha256: str) -> str:
        """A page image (PNG), stored once under its content hash."""
        return f"{self.prefix}image:{sha256}"

    def request(self, request_id: str) -> str:
        """Marks a request that logged a failure (feedback is accepted for it)."""
        return f"{self.prefix}request:{request_id}"

    def feedback(self, request_id: str) -> str:
        """Hash of a request's corrections, one field per page number."""
        return f"{self.prefix}feedback:{request_id}"

    def pages(self) -> str:
        """Stream of kept clean pages (``OCRGUARD_KEEP_CLEAN_PAGES``): pages the guard did not
        catch, whose image and output retraining samples candidates on."""
        return f"{self.prefix}pages"

    def corrections(self) -> str:
        """Stream of corrections as they arrive: a correction sent after an export reaches
        the next round's pairs because training drains this stream too."""
        return f"{self.prefix}corrections"


@dataclass
class FailureRecord:
    """What training needs of one degenerate generation (DESIGN.md, the failure record)."""

    request_id: str
    page: int
    model_id: str
    model_revision: str
    prompt_version: str
    prompt: str
    guard_version: str
    guard_mode: str
    image_sha256: str
    attempt: int
    sampling: dict[str, Any]
    output: str
    """The degenerate output up to the abort."""
    output_token_ids: list[int]
    verdict: dict[str, Any]
    recovered: bool = False
    """Whether the page ended with a clean attempt."""
    final_output: str = ""
    """What the request returned for the page after recovery."""
    attempts: list[dict[str, Any]] = field(default_factory=list)
    time: float = field(default_factory=time.time)
    prompt_system: str | None = None
    """The client's system message, if it sent one."""
    prompt_image_first: bool = True
    """Whether the page image came before the prompt's text."""
    onset_chars: int = 0
    """Characters of ``output`` before the loop's first copy (where a page marks it)."""
    repeat_chars: int = 0
    """Characters of ``output`` before the loop's second copy: the degenerate part."""

    @property
    def page_prompt(self) -> PagePrompt:
        """The prompt the degenerate output answered, as the engines take it."""
        return PagePrompt(self.prompt, self.prompt_system, self.prompt_image_first)

    @classmethod
    def of_attempt(
        cls,
        result: AttemptResult,
        *,
        request_id: str,
        page: int,
        model_id: str,
        model_revision: str,
        prompt_version: str,
        prompt: PagePrompt,
        guard_version: str,
        guard_mode: str,
        image_sha256: str,
        max_tokens: int,
        output: str,
        decode: Callable[[list[int]], str],
        recovered: bool,
        final_output: str,
        attempts: list[dict[str, Any]],
    ) -> FailureRecord:
        """The record of one tripped attempt (``output`` is its token ids decoded; ``decode``
        gives the characters where the loop starts)."""
        if result.verdict is None:
            raise ValueError("only a tripped attempt makes a failure record")
        attempt = result.attempt
        verdict = result.verdict
        ids = result.token_ids
        return cls(
            request_id=request_id,
            page=page,
            model_id=model_id,
            model_revision=model_revision,
            prompt_version=prompt_version,
            prompt=prompt.text,
            prompt_system=prompt.system,
            prompt_image_first=prompt.image_first,
            guard_version=guard_version,
            guard_mode=guard_mode,
            image_sha256=image_sha256,
            attempt=attempt.number,
            sampling={
                "temperature": attempt.temperature,
                "seed": attempt.seed,
                "max_tokens": max_tokens,
                "mode": attempt.mode,
                "prefix_tokens": len(attempt.prefix_token_ids),
            },
            output=output,
            output_token_ids=list(result.token_ids),
            verdict=verdict.as_dict(),
            onset_chars=len(decode(ids[: verdict.onset])),
            repeat_chars=len(decode(ids[: verdict.onset + verdict.period])),
            recovered=recovered,
            final_output=final_output,
            attempts=attempts,
        )

    def to_fields(self) -> dict[str, str]:
        """The stream entry: strings as they are, everything else as JSON, plus ``schema``."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            # plain-string fields as they are (readable in redis-cli); all others as JSON
            out[f.name] = value if f.type == "str" else json.dumps(value, ensure_ascii=False)
        out["schema"] = RECORD_SCHEMA
        return out

    @classmethod
    def from_fields(cls, entry: dict[str, str]) -> FailureRecord:
        """Read a stream entry back; ``SchemaMismatch`` for another schema version, and
        ``ValueError``/``KeyError`` for an entry that is not a failure record."""
        schema = entry.get("schema")
        if schema not in READABLE_SCHEMAS:
            raise SchemaMismatch(
                f"failure record schema {schema!r}; this reader understands {READABLE_SCHEMAS}"
            )
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in entry:
                raw = entry[f.name]
                kwargs[f.name] = raw if f.type == "str" else json.loads(raw)
        return cls(**kwargs)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


CORRECTION_SCHEMA = "1"


@dataclass
class Correction:
    """A person's transcription of one served page (the web page, the review queue, or
    ``POST /v1/ocr/{id}/feedback``): the most trusted *chosen* side of a DPO pair. It
    carries what the model answered (``output``) and where the page image is, so a
    correction of a page that never tripped the guard still makes a pair."""

    request_id: str
    page: int
    fields: dict[str, str]
    """header, margin, footer, text as the person wrote them."""
    output: str = ""
    """The raw output the request returned for the page."""
    model_id: str = ""
    model_revision: str = ""
    prompt: str = ""
    prompt_system: str | None = None
    prompt_image_first: bool = True
    image_sha256: str = ""
    """The page image's key (empty: no image was stored for the page)."""
    note: str | None = None
    time: float = field(default_factory=time.time)

    def to_fields(self) -> dict[str, str]:
        out = {f.name: json.dumps(getattr(self, f.name), ensure_ascii=False) for f in fields(self)}
        out["schema"] = CORRECTION_SCHEMA
        return out

    @classmethod
    def from_fields(cls, entry: dict[str, str]) -> Correction:
        if entry.get("schema") != CORRECTION_SCHEMA:
            raise SchemaMismatch(f"correction schema {entry.get('schema')!r}")
        return cls(**{f.name: json.loads(entry[f.name]) for f in fields(cls) if f.name in entry})

    @property
    def page_prompt(self) -> PagePrompt:
        return PagePrompt(self.prompt, self.prompt_system, self.prompt_image_first)


PAGE_SAMPLE_SCHEMA = "1"


@dataclass
class PageSample:
    """A clean page kept for retraining: a model that writes it cleanly greedily may still
    loop on it when sampled, and those loops are DPO pairs too (the paper's setting)."""

    request_id: str
    page: int
    model_id: str
    model_revision: str
    prompt: str
    prompt_system: str | None
    prompt_image_first: bool
    image_sha256: str
    output: str
    time: float = field(default_factory=time.time)

    def to_fields(self) -> dict[str, str]:
        out = {f.name: json.dumps(getattr(self, f.name), ensure_ascii=False) for f in fields(self)}
        out["schema"] = PAGE_SAMPLE_SCHEMA
        return out

    @classmethod
    def from_fields(cls, entry: dict[str, str]) -> PageSample:
        if entry.get("schema") != PAGE_SAMPLE_SCHEMA:
            raise SchemaMismatch(f"page sample schema {entry.get('schema')!r}")
        return cls(**{f.name: json.loads(entry[f.name]) for f in fields(cls) if f.name in entry})

    @property
    def page_prompt(self) -> PagePrompt:
        return PagePrompt(self.prompt, self.prompt_system, self.prompt_image_first)

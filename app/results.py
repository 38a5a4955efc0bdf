"""Typed results and stream events of an OCR request (no web framework types)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .guard.policy import GuardMode, PageOutcome, TripAction


@dataclass
class AttemptReport:
    number: int
    mode: str
    temperature: float
    prefix_tokens: int
    tokens_generated: int
    finish_reason: str | None
    verdict: dict[str, Any] | None


@dataclass
class GuardReport:
    mode: GuardMode
    version: str
    tripped: bool = False
    kind: str | None = None
    period: int | None = None
    onset: int | None = None
    lag: int | None = None
    outcome: PageOutcome = "none"
    attempts: list[AttemptReport] = field(default_factory=list)
    tokens_generated: int = 0
    tokens_saved: int = 0


@dataclass
class PageResult:
    page: int
    header: str | None
    margin: str | None
    footer: str | None
    text: str | None
    raw_text: str
    valid_json: bool
    """False when the model's output did not parse as the schema: read ``raw_text``."""
    finish_reason: str | None
    guard: GuardReport

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DeltaEvent:
    page: int
    attempt: int
    text: str
    token_ids: tuple[int, ...] = ()
    """The delta's tokens and their logprobs (the OpenAI endpoint's; not in /v1/ocr's SSE)."""
    logprobs: tuple[float | None, ...] = ()


@dataclass
class GuardEvent:
    """The guard tripped. ``keep_chars`` tells a streaming client how much of this attempt's
    text to keep (None: keep it all, the output was only flagged; after ``give_up`` the
    page event that follows carries the text returned)."""

    page: int
    attempt: int
    verdict: dict[str, Any]
    action: TripAction
    keep_chars: int | None
    onset_chars: int = 0
    """Characters of this attempt's text before the loop's first copy..."""
    repeat_chars: int = 0
    """...and before its second: from here on the text is the loop (a page marks it)."""


@dataclass
class PageEvent:
    result: PageResult
    token_ids: list[int] = field(default_factory=list)
    """The returned text's tokens (not serialized: the OpenAI endpoint's logprobs)."""
    logprobs: list[float | None] = field(default_factory=list)
    prompt_tokens: int | None = None


Event = DeltaEvent | GuardEvent | PageEvent

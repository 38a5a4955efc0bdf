"""Stutters: a line writing a phrase of itself again (``the meaning of life ... elegantly
meaning of life ...``), the echo of a model that re-emits the clauses it just wrote."""

from __future__ import annotations

from collections.abc import Callable

from .config import GuardConfig
from .verdict import Verdict


class StutterTracker:
    """Fed the exact copies the period tracker saw end (position, period, length). A copy of
    prose on the same line as its original is a stutter; the second within
    ``stutter_window_tokens`` of the first trips. A long name written twice in one sentence
    is legitimate once."""

    def __init__(self, config: GuardConfig) -> None:
        self.config = config
        self._last: int | None = None  # where the last stutter ended

    def feed(
        self, echoes: list[tuple[int, int, int]], text_between: Callable[[int, int], str]
    ) -> Verdict | None:
        cfg = self.config
        for i, p, exact in echoes:
            if not is_prose(text_between(i - exact, i), cfg.stutter_min_chars):
                continue
            if "\n" in text_between(i - exact - p, i).strip("\n"):
                continue  # the copy is on another line: the line views judge that
            if self._last is not None and i - self._last < cfg.stutter_window_tokens:
                return Verdict("block_reemission", p, i - exact - p, repeats=2, trip_at=i + 1)
            self._last = i
        return None


def is_prose(text: str, min_chars: int) -> bool:
    """At least ``min_chars`` of words: letters are most of what is not a space, and no
    table cell (a value repeated along a row is not a stutter)."""
    text = text.strip()
    if len(text) < min_chars or "|" in text or "\t" in text:
        return False
    letters = sum(1 for c in text if c.isalpha())
    return letters * 10 >= 7 * (len(text) - text.count(" "))

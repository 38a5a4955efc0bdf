"""Copies that are not identical: when a run of near-copies is a loop, and when it is the
legitimate variation of rows (numbers, codes) down a page."""

from __future__ import annotations

import re
from collections.abc import Callable

from .config import GuardConfig
from .periods import NUMBERS_ONLY, runs
from .structure import aligned, fold_numbers

# A word: three letters in a row (a code such as /g40/g81/g75 has none).
_WORD = re.compile(r"[^\W\d_]{3}")
_NUMBER = re.compile(r"\d{1,9}")

TextBetween = Callable[[int, int], str]


def fuzzy_trips(
    config: GuardConfig, state: list, p: int, i: int, run: int, text: TextBetween
) -> bool:
    """Whether a run of ``p``-token copies that are not all identical, ending at token
    ``i``, is a loop. Numbers, separators and codes vary legitimately row after row
    (tables, indexes, a PDF's unmapped glyphs): copies that drift must repeat words, and
    copies that differ only in their numbers need many more copies and must count (a
    payment schedule is not a counting loop)."""
    if run + p < config.fuzzy_copies_needed(p) * p:
        return False
    if not numbers_only(state, p, i, text):
        return has_words(p, i, text)
    needed = config.fuzzy_copies_needed(p, numbers_only=True)
    return run + p >= needed * p and counts(p, i, text)


def numbers_only(state: list, p: int, i: int, text: TextBetween) -> bool:
    """Whether the latest copy differs from the one before only in its numbers; judged once
    per copy (kept in the candidate's state)."""
    copies = (runs(state, i)[0] + p) // p
    judged = state[NUMBERS_ONLY]
    if judged is None or judged[0] != copies:
        # each copy rotated to start at a line start: the verdict must not depend on where
        # the copies' boundary falls (inside a number, at a digit-count change)
        last = aligned(text(i - p + 1, i + 1))
        before = aligned(text(i - 2 * p + 1, i - p + 1))
        judged = state[NUMBERS_ONLY] = (copies, fold_numbers(last) == fold_numbers(before))
    return judged[1]


def has_words(p: int, i: int, text: TextBetween) -> bool:
    """Whether the last two copies both hold a word (a drifting loop repeats words; a run
    that went on through its misses into other text does not)."""
    last, before = text(i - p + 1, i + 1), text(i - 2 * p + 1, i - p + 1)
    return _WORD.search(last) is not None and _WORD.search(before) is not None


def counts(p: int, i: int, text: TextBetween) -> bool:
    """Whether copies that differ only in their numbers are a counting loop: a unit with
    words (a schedule's row looks the same), or numbers that move by the same step over the
    last four copies (``<td>7</td><td>8</td>``, ``2024 2025 2026``); codes that jump about
    (``/g40/g81/g75``) are not."""
    if _WORD.search(text(i - p + 1, i + 1)):
        return True
    copies = [aligned(text(i - k * p + 1, i - (k - 1) * p + 1)) for k in (4, 3, 2, 1)]
    numbers = [[int(n) for n in _NUMBER.findall(copy)] for copy in copies]
    if len({len(found) for found in numbers}) != 1:
        return False
    steps = [[b - a for a, b in zip(x, y)] for x, y in zip(numbers, numbers[1:])]
    return steps[0] == steps[1] == steps[2] and any(steps[0])

"""Tells content from layout: which repeated text is filler that documents repeat legitimately."""

from __future__ import annotations

import re

from .config import UnitClass

# Markup carries no content of its own: an empty HTML cell is as much filler as "| |".
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>|&nbsp;|&#?\w+;")
_DIGITS = re.compile(r"\d+")


def classify_unit(text: str) -> UnitClass:
    """``structural`` (no letters or digits once markup is removed), ``numeric`` (digits
    and separators only) or ``content``. Whole lines of one repeated mark (``::::``,
    ``====``) count as content: a rule is drawn once or twice, never line after line."""
    bare = _TAG.sub("", text)
    if "\n" in bare:
        lines = [line.strip() for line in bare.split("\n") if line.strip()]
        if lines and all(len(line) >= 8 and len(set(line)) == 1 for line in lines):
            return "content"
    has_digit = False
    for char in bare:
        if char.isalpha():
            return "content"
        if char.isdigit():
            has_digit = True
    return "numeric" if has_digit else "structural"


def normalize_line(line: str) -> str:
    """The key under which two lines count as the same line: case, spacing and
    surrounding markup ignored."""
    return " ".join(line.split()).lower()


def normalize_numbers(line: str) -> str:
    """``normalize_line`` with every number replaced by ``0``: copies of a fuzzy loop that
    differ only in their numbers become equal."""
    return _DIGITS.sub("0", normalize_line(line))


def has_letters(text: str, minimum: int = 1) -> bool:
    """Whether ``text`` holds at least ``minimum`` letters once markup is removed."""
    count = 0
    for char in _TAG.sub("", text):
        if char.isalpha():
            count += 1
            if count >= minimum:
                return True
    return False


def fold_numbers(text: str) -> str:
    """``text`` with every number replaced by ``0`` and nothing else changed."""
    return _DIGITS.sub("0", text)

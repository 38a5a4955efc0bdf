"""A deterministic word-piece tokenizer for guard tests: words, punctuation, whitespace."""

from __future__ import annotations

import re

_PIECES = re.compile(r"\s*[^\s\w]|\s*\w+|\s+")


class WordTokenizer:
    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def encode(self, text: str) -> tuple[list[int], list[str]]:
        pieces = _PIECES.findall(text)
        return [self.vocab.setdefault(p, len(self.vocab)) for p in pieces], pieces


def scan_text(text: str, config=None):
    from app.guard import DEFAULT_CONFIG, scan

    ids, pieces = WordTokenizer().encode(text)
    return scan(ids, pieces, config or DEFAULT_CONFIG)

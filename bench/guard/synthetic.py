"""Loops injected into real documents at a known onset, every kind the guard must catch.

The text before the onset is a real document from the legitimate corpus; from the onset on
the output degenerates the way VLM OCR output does (issue threads in the degenerate
corpus): the last unit of real text comes back again and again, or with small changes, or
a header is re-emitted between new lines. ``onset_chars`` is where real text ends.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# kinds whose repeated unit is new text rather than the end of the real prefix
_UNIT_NOT_IN_PREFIX = ("token_run", "inline_block")
CLEAR_KINDS = ("token_run", "ngram_loop", "line_loop", "block_loop", "inline_block")
HARD_KINDS = ("fuzzy_loop", "block_reemission")


@dataclass(frozen=True)
class Injected:
    name: str
    kind: str
    text: str
    onset_chars: int
    unit: str = ""
    """The repeated unit of an exact loop (empty for hard kinds)."""


def inject_all(documents: list[str], per_kind: int, seed: int = 0) -> list[Injected]:
    rng = random.Random(seed)
    usable = [d for d in documents if len([ln for ln in d.splitlines() if ln.strip()]) >= 6]
    items = []
    for kind in CLEAR_KINDS + HARD_KINDS:
        for n in range(per_kind):
            doc = usable[(n * 7 + len(items)) % len(usable)]
            prefix = _prefix(doc, rng)
            tail, unit = _DEGENERATE[kind](prefix, rng, usable)
            if kind in _UNIT_NOT_IN_PREFIX:
                # the first copy counts as the last real content, as for the other kinds
                prefix, tail = prefix + unit, tail[len(unit) :]
            items.append(Injected(f"{kind}-{n:03d}", kind, prefix + tail, len(prefix), unit))
    return items


def _prefix(doc: str, rng: random.Random) -> str:
    lines = doc.splitlines(keepends=True)
    cut = rng.randint(4, max(4, min(len(lines) - 1, 60)))
    text = "".join(lines[:cut])
    return text if text.endswith("\n") else text + "\n"


def _last_lines(prefix: str, count: int) -> list[str]:
    lines = [ln for ln in prefix.splitlines(keepends=True) if ln.strip()]
    return lines[-count:]


def _token_run(prefix, rng, docs):
    char = rng.choice(["0", "!", "a", "ã", "1", "-", "_", "."])
    sep = rng.choice(["", " "])
    return (char + sep) * 400, char + sep


def _ngram(prefix, rng, docs):
    words = prefix.split()[-rng.randint(2, 5) :]
    unit = " " + " ".join(words)
    return unit * 80, unit


def _line(prefix, rng, docs):
    unit = _last_lines(prefix, 1)[0]
    return unit * 40, unit


def _block(prefix, rng, docs):
    unit = "".join(_last_lines(prefix, rng.randint(2, 4)))
    return unit * 15, unit


def _inline(prefix, rng, docs):
    words = [w.strip("|*#") for w in prefix.split() if w.strip("|*#")][-6:]
    cells = "".join(f"<td>{w}</td>" for w in words[: rng.randint(2, 5)])
    unit = f"<tr>{cells}</tr>"
    return unit * 40, unit


def _fuzzy(prefix, rng, docs):
    line = _last_lines(prefix, 1)[0].rstrip("\n")
    style = rng.choice(["count", "alternate", "drift"])
    out = []
    for n in range(60):
        if style == "count":
            out.append(f"{line} {n + 2}")
        elif style == "alternate":
            out.append(line if n % 2 else line.upper())
        else:
            chars = list(line)
            if chars:
                k = rng.randrange(len(chars))
                if chars[k].isalpha():
                    chars[k] = rng.choice("aeiou")
            out.append("".join(chars))
    return "\n".join(out) + "\n", ""


def _reemission(prefix, rng, docs):
    header = max(_last_lines(prefix, 8), key=len).rstrip("\n")
    filler = [
        ln for ln in rng.choice(docs).splitlines() if ln.strip() and ln.strip() != header.strip()
    ]
    out = []
    for n in range(40):
        out.append(header)
        for _ in range(rng.randint(1, 3)):
            out.append(f"{filler[n % len(filler)]} ({n})")
    return "\n".join(out) + "\n", ""


_DEGENERATE = {
    "token_run": _token_run,
    "ngram_loop": _ngram,
    "line_loop": _line,
    "block_loop": _block,
    "inline_block": _inline,
    "fuzzy_loop": _fuzzy,
    "block_reemission": _reemission,
}

"""Tells content from layout: which repeated text is filler that documents repeat legitimately."""

from __future__ import annotations

import re

from .config import UnitClass

# Markup carries no content of its own: an empty HTML cell is as much filler as "| |". A
# model's special tokens (``<|im_end|>``, ``<|mt_0124|>``) are markup too: their pipes are no
# table's cells (a grounded caption looping on them is prose, not a table row).
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>|<\|[^<>|\s]*\|>|&nbsp;|&#?\w+;")
_DIGITS = re.compile(r"\d+")
_ANY_DIGIT = re.compile(r"\d").search
# A receipt or invoice item: an amount of money and a quantity (Brazilian and English forms).
_MONEY = re.compile(r"\d[.,]\d{2}(?!\d)")
_QUANTITY = re.compile(
    r"(?i)\b(?:qtde?|qtd|quant|qty|un|und|unid|kg|pc|pç|cx|lt|vl\.?\s*unit)\b|\d\s*[x×]\s*\d"
)
# A receipt or invoice line with its whitespace collapsed: a short description (an item code,
# a name) whose last field is an amount, perhaps a discount in parentheses, perhaps followed by
# a tax flag ("GLITTER PAINT 1.00 F", "752701 SECRET CELLARS CABERNE $6.97", "Discount ($0.70)").
_PRICE_LINE = re.compile(
    r"(?i)^(?:\S+ ){1,8}\(?-? ?(?:r\$|[$€£])? ?\d{1,3}(?:[.,]\d{3})*[.,]\d{2} ?\)?(?: [a-z*]{1,2})?$"
)
_CELL = re.compile(r"\||\t")
_CELL_MAX_WORDS = 12  # a table cell holds a few words, not a paragraph
# An enumeration's marker: I -, II -, a), 3., 4º ...
LIST_MARKER = re.compile(r"^(?:[ivxlcdm]+|[a-z]|\d+)\s*[.)º°-][\s.)º°-]*", re.IGNORECASE)


def classify_unit(text: str) -> UnitClass:
    """``structural`` (no letters or digits once markup is removed), ``numeric`` (digits
    and separators only), ``record`` (table rows, receipt items), or ``content``.

    One Latin letter repeated with nothing between (``WWWW``, ``XXXX``) counts as structural: OCR
    reads a receipt's printed border or ornament as a letter run, and a loop of one letter
    runs on far past a line's width (the length in the line decides, as for ``----``).
    Whole lines of one repeated mark (``::::``, ``====``) count as content: a rule is drawn
    once or twice, never line after line. Table cells repeated inside a row (``| M | M |``,
    a flag or a short code per cell) count as structural: a row has as many cells as the
    table has columns. A cell with words repeated inside a row (a header merged over
    several columns, written once per column by PDF converters), whole table rows and
    receipt or invoice items (an amount and a quantity) count as records: a page lists the
    same item several times legitimately.
    """
    bare = _TAG.sub("", aligned(text))
    lines = [line.strip() for line in bare.split("\n") if line.strip()]
    if "\n" in bare and lines and all(len(line) >= 8 and len(set(line)) == 1 for line in lines):
        return "content"
    if len(set(bare)) == 1 and bare.isascii() and bare.isalpha():
        return "structural"  # one letter run within a line: a printed border read as WWWW
    letters = sum(1 for c in bare if c.isalpha())
    if not letters:
        return "numeric" if any(c.isdigit() for c in bare) else "structural"
    if "\n" not in bare.strip("\n") and _CELL.search(bare):
        if letters <= 3:
            return "structural"  # a cell or two of a row: its length in the line decides
        if len(_CELL.findall(bare)) == 1 and len(bare.split()) <= _CELL_MAX_WORDS:
            return "record"  # one cell with words, across the columns it spans
    if lines and (all(_is_row(line) for line in lines) or _is_item(bare)):
        return "record"
    return "content"


def aligned(unit: str) -> str:
    """The unit rotated to start at a line start: a token period's copy can begin anywhere
    (``9\\nVl. Total\\n4,9`` is a copy of ``Vl. Total\\n4,99\\n``)."""
    cut = unit.find("\n")
    if cut < 0 or cut == len(unit) - 1:
        return unit
    return unit[cut + 1 :] + unit[: cut + 1]


def _is_row(line: str) -> bool:
    """A table row: markdown (``| a | b |``), two tab-separated cells, or a JSON object."""
    return (
        line.count("|") >= 3
        or (line.startswith("|") and line.endswith("|"))
        or line.count("\t") >= 2
        or (line.startswith("{") and '":' in line)
    )


def word_count(text: str) -> int:
    """Words, counting two CJK characters as one (those scripts write no spaces)."""
    cjk = sum(1 for c in text if "\u3040" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af")
    return max(len(text.split()), cjk // 2)


_SHORT_FIELD = 32  # characters: "Vl. Total" / "4,99", a receipt's label and amount lines


def _is_item(text: str) -> bool:
    """An item with its quantity and amount, or lines around an amount each a short label or
    a price line. Lines are measured with their whitespace collapsed: OCR that keeps the
    layout pads a receipt's lines to the page's width."""
    if not _MONEY.search(text):
        return False
    if _QUANTITY.search(text):
        return True
    for line in text.split("\n"):
        line = " ".join(line.split())
        if len(line) > _SHORT_FIELD and not _PRICE_LINE.match(line):
            return False
    return True


def normalize_line(line: str) -> str:
    """The key under which two lines count as the same line: case, spacing and
    surrounding markup ignored."""
    return " ".join(line.split()).lower()


def normalize_numbers(line: str) -> str:
    """``normalize_line`` with every number replaced by ``0``: copies of a fuzzy loop that
    differ only in their numbers become equal."""
    return _DIGITS.sub("0", normalize_line(line))


# Article and section numbers written as CJK numerals (第二条, 第十一章): numbers like any other.
_CJK_ENUMERATOR = re.compile(r"第[〇零一二三四五六七八九十百千两]+([条章节款项编回])")
# What numbers a sentence in a list, at a line's start: a run of marks and digits (a list
# number, a timestamp), 第0条, Art. 7, Artigo 7, Cláusula 7, Item 7; or a number at its end.
_LEADING = re.compile(
    r"[\W\d_]*\d[\W\d_]*|(?:第0[条章节款项编回]|(?:art(?:igo)?|cl[aá]usula|item)\.?\s*\d+\S*)"
)
_TRAILING = re.compile(r"\s\d[\d.,:/-]*\W*$")
_COUNTED_MIN_LETTERS = 12


def line_key(line: str) -> str:
    """A line (normalized already) with its numbers folded, CJK article numbers included: the key
    under which lines that differ only in their numbers are equal."""
    key = _DIGITS.sub("0", line)
    if "第" in key:
        key = _CJK_ENUMERATOR.sub(r"第0\1", key)
    return key


def counted_sentence(line: str) -> str | None:
    """A normalized line with its leading number (a list number, 第二条, Art. 7, a
    timestamp) or its trailing number cut off, when it has one: consecutive lines whose
    counted sentence is the same are one sentence under a running counter. Numbers inside
    the sentence stay: they must be the same from copy to copy, so the rows of a schedule or
    statement (a changing date or amount among the words) do not count. None for a line
    without such a number, and for a table row (its cells are the numbers view's)."""
    if "|" in line or "\t" in line:
        return None
    if "第" in line:
        line = _CJK_ENUMERATOR.sub(r"第0\1", line)
    elif _ANY_DIGIT(line) is None:
        return None  # both patterns need a digit: most lines of prose end here
    head = _LEADING.match(line)
    start = head.end() if head else 0
    tail = _TRAILING.search(line, start)
    if start == 0 and tail is None:
        return None
    return line[start : tail.start() if tail else len(line)].strip()


def is_sentence(body: str, min_words: int) -> bool:
    """At least ``min_words`` words and a dozen letters, not a parenthesised note
    (``Art. 12. (Revogado pela Lei nº 9.876)``)."""
    if body.startswith(("(", "[")) or word_count(body) < min_words:
        return False
    return sum(1 for c in body if c.isalpha()) >= _COUNTED_MIN_LETTERS


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

"""The guard's versioned, frozen configuration."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

UnitClass = Literal["content", "numeric", "structural", "record"]


@dataclass(frozen=True)
class GuardConfig:
    """Thresholds of the loop detector.

    A loop of period ``p`` tokens trips once the output ends with ``copies(p)`` copies of
    the same unit. Short units need more copies than long ones, because short repetition
    is common in real documents (``Santo, Santo, Santo``) and long repetition is not.
    Units made only of separators (table rules, leaders, blanks, empty cells) are judged by
    their length in characters instead: such filler is legitimate until it is absurdly long.
    Change any threshold and bump ``version``: the version is stamped on metrics and
    failure records so that offline labels and online trips stay comparable.
    """

    version: str = "2026.12.8"
    """Identifies this set of thresholds in metrics, failure records and evaluations."""

    max_period: int = 256
    """Longest unit, in tokens, that the token-level tracker follows. Longer blocks are
    caught line by line."""

    max_block_lines: int = 32
    """Longest block, in lines, that the line-level tracker follows."""

    min_copies: int = 3
    """Fewest copies of any unit (the original counts as one) before a trip."""

    lag_tokens: int = 16
    """Extra repeated tokens a content unit may run before tripping: copies needed are
    ``min_copies + floor(lag_tokens / period)``, so a unit longer than 16 tokens trips at
    its third copy and a single repeated word at its 19th."""

    numeric_lag_tokens: int = 32
    """Same as ``lag_tokens`` for units of digits and separators only (``0 0 0``, ``| 1 |``),
    which tables repeat legitimately more often."""

    long_block_bytes: int = 160
    """A block of whole lines at least this long (UTF-8 bytes once normalized, so that a
    CJK character weighs like the 2-3 Latin letters it stands for) trips as soon as
    one line of its third copy follows two exact copies, instead of at the end of the third
    copy: a page-sized block pasted twice and starting over is a loop, and waiting a whole
    copy more costs hundreds of tokens. Legitimate duplicates (a second "via" of a receipt)
    stop after the second copy."""

    record_min_copies: int = 8
    """Fewest exact copies of a record unit (a table row, a receipt or invoice item) before a
    trip: receipts list the same item several times (five identical two-line NFC-e item
    blocks in a real one), tables repeat identical rows."""

    structural_max_chars: int = 200
    """Units without letters or digits (``----``, ``....``, ``<td></td>``) repeated within
    one line trip once the repeated span reaches this many characters (an 80-column ruled
    line or a dotted leader stays below)."""

    table_rule_max_chars: int = 800
    """Same as ``structural_max_chars`` for a unit with a cell border (``----|----``): a
    markdown table's separator row is as wide as the table, and PDF converters pad columns
    to their widest cell (398 characters for a twelve-column table)."""

    structural_max_lines: int = 16
    """Whole lines without letters or digits (empty table rows ``|  |  |``) trip at this
    many consecutive copies: blank forms repeat empty rows legitimately."""

    whitespace_max_chars: int = 256
    """Units of whitespace only (blank lines, indentation) trip once one line of the run
    holds this many characters of it, or the run ``blank_max_lines`` line breaks. Counted per
    line: OCR that keeps the page's layout pads every line to the page's width (a
    photographed receipt: 514 characters of blank lines padded to 111 columns), and no page
    is wider than this."""

    blank_max_lines: int = 48
    """Line breaks a run of whitespace only may hold (extracted documents hold long blank
    runs between sections: 38 in the legitimate corpus)."""

    fuzzy_min_copies: int = 16
    """Fewest copies for a loop whose copies differ (changing numbers, a few substituted
    tokens)."""

    fuzzy_numbers_min_copies: int = 64
    """Fewest copies for a fuzzy loop whose copies differ only in their numbers
    (``Parcela 1 de 36 ...``, ``Parcela 2 de 36 ...``): payment schedules, statements and
    indexes repeat a row with new numbers dozens of times legitimately, while a counting
    loop runs on to ``max_tokens``."""

    counter_min_copies: int = 5
    """Fewest copies of one sentence of prose under a running counter (``第二条 <the same
    sentence>``, ``第三条 <the same sentence>``; ``<a sentence>; 2``, ``<a sentence>; 3``;
    timestamped subtitles of one line): a list numbers different sentences, a loop counts
    the same one. Rows whose numbers stand among their words (schedules) are not counted
    sentences."""

    counter_min_words: int = 4
    """Words a counted sentence needs besides its numbers."""

    restart_min_chars: int = 20
    """A line at least this long that comes back spliced into another line (after a head of
    marks alone), followed by the line that followed it before, is the output starting
    over."""

    fuzzy_lag_tokens: int = 96
    """Like ``lag_tokens`` for fuzzy loops, which need more evidence than exact ones."""

    fuzzy_max_miss_ratio: float = 0.125
    """A fuzzy loop survives token mismatches up to this fraction of its length."""

    reemission_min_count: int = 8
    """A line re-emitted non-consecutively trips at this many occurrences..."""

    reemission_max_gap_lines: float = 4.0
    """...when its occurrences are on average at most this many lines apart."""

    reemission_min_chars: int = 12
    """Lines shorter than this (labels, list markers) are never judged as re-emitted."""

    twice_min_chars: int = 30
    """A span of prose written twice in a row (the second copy right after the first, both
    whole) trips at its second copy once it is this long..."""

    twice_min_words: int = 5
    """...and has this many words: real pages do not print a sentence twice in a row, an
    OCR model that re-emits its last sentence does."""

    twice_slack_tokens: int = 4
    """Tokens between the two copies (a paragraph break, emphasis marks) that do not break
    their adjacency."""

    echo_min_prefix_chars: int = 20
    """A line that repeats the line before it with a part of its middle dropped (its start
    and its end, ``echo_min_prefix_chars`` and ``echo_min_suffix_chars`` long at least)
    is a re-emission at its second copy."""

    echo_min_suffix_chars: int = 15

    template_min_lines: int = 5
    """Consecutive lines each nearly the previous one (the same start and end around a
    changed word) trip at this many: a description looping with small variations."""

    template_similarity: float = 0.75
    """Share of the longer line that the common start and end of two lines cover for them
    to count as variations of one template."""

    stutter_min_chars: int = 30
    """A line that writes a phrase of prose this long twice (the copy after the original,
    other text maybe between, all on the one line) stutters..."""

    stutter_window_tokens: int = 256
    """...and a second stutter within this many tokens of the first trips: a long name
    written twice in one sentence is legitimate once, a model that re-emits the clauses it
    just wrote does it line after line."""

    overflow_margin_lines: int = 3
    """With the page's line count known: once the output has written more lines than the
    page holds, plus this margin (or half the page's lines, whichever is more), a line that
    repeats a line before it trips: the model is writing what the page does not hold. On a
    page with no text line at all, any unit trips at ``min_copies``."""

    extra: dict[str, str] = field(default_factory=dict, compare=False)
    """Free-form notes carried along (e.g. who tuned the thresholds); not used by the
    detector."""

    def __post_init__(self) -> None:
        if self.max_period < 1:
            raise ValueError("max_period must be >= 1")
        if self.min_copies < 2:
            raise ValueError("min_copies must be >= 2: one copy is not a repetition")
        if not 0.0 <= self.fuzzy_max_miss_ratio < 0.5:
            raise ValueError("fuzzy_max_miss_ratio must be in [0, 0.5)")
        if self.fuzzy_min_copies < self.min_copies:
            raise ValueError("fuzzy_min_copies must be >= min_copies")
        if self.fuzzy_numbers_min_copies < self.fuzzy_min_copies:
            raise ValueError("fuzzy_numbers_min_copies must be >= fuzzy_min_copies")
        if self.reemission_min_count < 3:
            raise ValueError("reemission_min_count must be >= 3")
        if self.counter_min_copies < self.min_copies:
            raise ValueError("counter_min_copies must be >= min_copies")

    def copies_needed(self, period: int, unit: UnitClass) -> int:
        """Copies of a unit of ``period`` tokens needed for an exact-loop trip."""
        lag = self.numeric_lag_tokens if unit in ("numeric", "record") else self.lag_tokens
        least = self.record_min_copies if unit == "record" else self.min_copies
        return max(least, self.min_copies + lag // period)

    def fuzzy_copies_needed(self, period: int, numbers_only: bool = False) -> int:
        """Copies needed for a loop whose copies are not identical (``numbers_only``: they
        differ in their numbers and nothing else)."""
        least = self.fuzzy_numbers_min_copies if numbers_only else self.fuzzy_min_copies
        return max(least, self.min_copies + self.fuzzy_lag_tokens // period)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


DEFAULT_CONFIG = GuardConfig()

"""Echoes: a line written again at once with a piece dropped, and runs of lines that vary one
template. Two views the exact and numbers-folded line periods cannot see."""

from __future__ import annotations

import operator
import re

from .config import GuardConfig
from .structure import LIST_MARKER, classify_unit, normalize_numbers
from .verdict import Verdict

# Chinese numerals and list markers count as numbers: articles 第二条, 第三条 and items
# "I - (revogado)", "II - (revogado)" differ in them only.
_CJK_NUMBER = re.compile(r"[一二三四五六七八九十百千零〇]+")

# A row drifting in its spelling: this long at least, and this share of it unchanged.
_ROW_MIN_CHARS = 40
_ROW_SIMILARITY = 0.95

# Markup at a line's edges (a list bullet, emphasis, a quote); lines come normalized, their
# only whitespace single spaces, so stripping these characters is the whole job.
_EDGE_HEAD = " *_`>#-"
_EDGE_TAIL = " *_`"


class EchoTracker:
    """Fed each finished, normalized, non-blank line with its token span."""

    def __init__(self, config: GuardConfig) -> None:
        self.config = config
        self._previous: tuple[str, int] | None = None  # (bare line, its first token)
        self._run = 0
        self._run_start = 0

    def feed(self, line: str, start: int, end: int) -> Verdict | None:
        bare = line.lstrip(_EDGE_HEAD).rstrip(_EDGE_TAIL)
        previous, self._previous = self._previous, (bare, start)
        if previous is None or not bare or not previous[0] or bare == previous[0]:
            self._run = 0
            return None
        before, before_start = previous
        if bare[0] != before[0] and bare[-1] != before[-1] and len(bare) != len(before):
            self._run = 0  # neither start, end nor length in common: nothing echoes
            return None
        prefix = common_prefix(before, bare)
        suffix = common_prefix(before[::-1], bare[::-1])
        if self._dropped_middle(before, bare, prefix, suffix):
            if classify_unit(bare) != "content":
                return None
            return Verdict("block_reemission", end - before_start, before_start, 2, end)
        if self._variation(before, bare, prefix, suffix):
            if self._run == 0:
                self._run_start = before_start
            self._run += 1
            if self._run + 1 >= self.config.template_min_lines:
                lines = self._run + 1
                period = max(1, (end - self._run_start) // lines)
                return Verdict("fuzzy_loop", period, self._run_start, lines, end)
        else:
            self._run = 0
        return None

    def _dropped_middle(self, before: str, line: str, prefix: int, suffix: int) -> bool:
        """``line`` is ``before`` with a piece of its middle left out."""
        cfg = self.config
        return (
            len(line) < len(before)
            and prefix >= cfg.echo_min_prefix_chars
            and suffix >= cfg.echo_min_suffix_chars
            and prefix + suffix >= len(line)
        )

    def _variation(self, before: str, line: str, prefix: int, suffix: int) -> bool:
        """The two lines are one template with a changed word (their common start and end
        cover most of them), or with changed letters here and there (most positions hold the
        same character: copies drifting in their spelling). Lines that differ only in their
        numbers or list markers (a schedule, an index, revoked articles) are the
        numbers-folded view's, which needs many more copies."""
        cfg = self.config
        longer = max(len(before), len(line))
        if min(len(before), len(line)) < 12:
            return False
        similarity = min(prefix + suffix, longer) / longer
        if similarity < _ROW_SIMILARITY and len(before) == len(line):
            similarity = max(similarity, sum(map(operator.eq, before, line)) / longer)
        if similarity < cfg.template_similarity or _fold(before) == _fold(line):
            return False
        unit = classify_unit(line)
        if unit == "content":
            return True
        # table rows and receipt items vary in their values row after row: only a long row
        # with a letter or two changed (the same row, misspelt anew) is a drifting copy
        return unit == "record" and longer >= _ROW_MIN_CHARS and similarity >= _ROW_SIMILARITY


def common_prefix(a: str, b: str) -> int:
    """Length of the common start of two strings, by halving with slice comparisons (C
    speed: ``os.path.commonprefix`` walks the characters in Python)."""
    low, high = 0, min(len(a), len(b))
    if a[:high] == b[:high]:
        return high
    while high - low > 1:  # a[:low] == b[:low], a[:high] != b[:high]
        middle = (low + high) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle
    return low


def _fold(line: str) -> str:
    return LIST_MARKER.sub("", _CJK_NUMBER.sub("0", normalize_numbers(line)))

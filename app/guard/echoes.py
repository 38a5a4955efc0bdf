"""Echoes: a line written again at once with a piece dropped, and runs of lines that vary one
template. Two views the exact and numbers-folded line periods cannot see."""

from __future__ import annotations

import os
import re

from .config import GuardConfig
from .structure import LIST_MARKER, classify_unit, normalize_numbers
from .verdict import Verdict

# Chinese numerals and list markers count as numbers: articles 第二条, 第三条 and items
# "I - (revogado)", "II - (revogado)" differ in them only.
_CJK_NUMBER = re.compile(r"[一二三四五六七八九十百千零〇]+")

_EDGE_MARKUP = re.compile(r"^[\s*_`>#-]+|[\s*_`]+$")


class EchoTracker:
    """Fed each finished, normalized, non-blank line with its token span."""

    def __init__(self, config: GuardConfig) -> None:
        self.config = config
        self._previous: tuple[str, int] | None = None  # (bare line, its first token)
        self._run = 0
        self._run_start = 0

    def feed(self, line: str, start: int, end: int) -> Verdict | None:
        bare = _EDGE_MARKUP.sub("", line)
        previous, self._previous = self._previous, (bare, start)
        if previous is None or not bare:
            self._run = 0
            return None
        before, before_start = previous
        if bare == before or classify_unit(bare) != "content":
            self._run = 0
            return None
        if self._dropped_middle(before, bare):
            return Verdict("block_reemission", end - before_start, before_start, 2, end)
        if self._variation(before, bare):
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

    def _dropped_middle(self, before: str, line: str) -> bool:
        """``line`` is ``before`` with a piece of its middle left out."""
        cfg = self.config
        if len(line) >= len(before):
            return False
        prefix = len(os.path.commonprefix([before, line]))
        suffix = len(os.path.commonprefix([before[::-1], line[::-1]]))
        return (
            prefix >= cfg.echo_min_prefix_chars
            and suffix >= cfg.echo_min_suffix_chars
            and prefix + suffix >= len(line)
        )

    def _variation(self, before: str, line: str) -> bool:
        """The two lines are one template with a changed word. Lines that differ only in
        their numbers or list markers (a schedule, an index, revoked articles) are the
        numbers-folded view's, which needs many more copies."""
        longer = max(len(before), len(line))
        if min(len(before), len(line)) < 12 or _fold(before) == _fold(line):
            return False
        prefix = len(os.path.commonprefix([before, line]))
        suffix = len(os.path.commonprefix([before[::-1], line[::-1]]))
        return min(prefix + suffix, longer) / longer >= self.config.template_similarity


def _fold(line: str) -> str:
    return LIST_MARKER.sub("", _CJK_NUMBER.sub("0", normalize_numbers(line)))

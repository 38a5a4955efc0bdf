"""Line-level views of the stream: repeated blocks of whole lines, and re-emitted lines."""

from __future__ import annotations

from .config import GuardConfig
from .echoes import EchoTracker
from .structure import classify_unit, has_letters, normalize_line, normalize_numbers
from .verdict import Verdict


class LineTracker:
    """Follows completed lines. Blank lines are skipped (``A\\n\\nA`` repeats ``A``), and
    lines compare case- and whitespace-insensitively, so it catches loops the token view
    misses: blocks longer than ``max_period`` tokens, and copies that tokenize differently.
    It works once per line, in ``max_block_lines`` steps."""

    def __init__(self, config: GuardConfig, page_lines: int | None = None) -> None:
        self.config = config
        self._overflow = (
            None
            if page_lines is None
            else page_lines + max(config.overflow_margin_lines, page_lines // 2)
        )
        self.current: list[str] = []  # text of the unfinished line; never rebound
        self._start = 0  # token index where the current line began
        self._lines: list[str] = []  # normalized non-blank lines
        self._keys: list[str] = []  # ...with numbers folded
        self._ends: list[int] = []  # token index just past each line (its newline included)
        self._begins: list[int] = []
        q = config.max_block_lines + 1
        self._exact = [0] * q
        self._fuzzy = [0] * q
        self._seen: dict[str, list[int]] = {}  # line -> [count, first line, first token]
        self._echoes = EchoTracker(config)

    def extend(self, text: str) -> None:
        if text:
            self.current.append(text)

    def feed(self, text: str, tokens_seen: int) -> Verdict | None:
        """Consume text that holds at least one newline; ``tokens_seen`` counts it."""
        *complete, rest = text.split("\n")
        verdict = None
        for n, part in enumerate(complete):
            self.current.append(part)
            line = "".join(self.current)
            self.current.clear()
            found = self._finish(line, tokens_seen)
            verdict = verdict or found
            if n == len(complete) - 1:
                self._start = tokens_seen - 1 if rest else tokens_seen
        if rest:
            self.current.append(rest)
        return verdict

    def _finish(self, line: str, end: int) -> Verdict | None:
        start, self._start = self._start, end
        norm = normalize_line(line)
        if not norm:
            if self._ends:
                self._ends[-1] = end  # a blank line belongs to the block above it
            return None
        key = normalize_numbers(norm)
        lines, keys = self._lines, self._keys
        n = len(lines)
        lines.append(norm)
        keys.append(key)
        self._begins.append(start)
        self._ends.append(end)
        exact, fuzzy = self._exact, self._fuzzy
        hot = None
        threshold = self.config.min_copies - 1
        for q in range(1, min(self.config.max_block_lines, n) + 1):
            # hot from two copies and one line on: long blocks trip there (long_block_bytes)
            if lines[n - q] == norm:
                exact[q] += 1
            else:
                exact[q] = 0
            if keys[n - q] == key:
                fuzzy[q] += 1
                if fuzzy[q] >= threshold * q or (q > 1 and exact[q] > q):
                    hot = [q] if hot is None else [*hot, q]
            else:
                fuzzy[q] = 0
        if hot is None and exact[1] == threshold - 1 and self._starts_mid_line(n - exact[1] - 1):
            hot = [1]
        if hot is not None:
            verdict = self._check_blocks(hot, n, end)
            if verdict is not None:
                return verdict
        if self._overflow is not None and n + 1 > self._overflow:
            verdict = self._check_overflow(n, end)
            if verdict is not None:
                return verdict
        return self._check_reemission(norm, n, start, end) or self._echoes.feed(norm, start, end)

    def _check_blocks(self, hot: list[int], n: int, end: int) -> Verdict | None:
        cfg = self.config
        for q in hot:
            run_exact, run_fuzzy = self._exact[q], self._fuzzy[q]
            block = "\n".join(self._lines[n - q + 1 :])
            period = end - self._ends[n - q]
            unit = classify_unit(block)
            if run_exact:
                span = run_exact + q
                # A loop that began mid-line: its first copy ends the line above the run.
                mid_line = q == 1 and self._starts_mid_line(n + 1 - span - 1)
                span += mid_line
                if unit == "structural":
                    tripped = span >= cfg.structural_max_lines * q
                else:
                    tripped = span >= cfg.copies_needed(period, unit) * q or (
                        unit == "content"
                        and span > 2 * q
                        and len(block.encode()) >= cfg.long_block_bytes
                    )
                if tripped:
                    kind = "line_loop" if q == 1 else "block_loop"
                    verdict = self._verdict(kind, period, n + 1 - span, span // q, end)
                    if mid_line:  # the loop began where the line above turns into the unit
                        first_copy_end = self._ends[n - span + 1]
                        onset = max(self._begins[n - span + 1], first_copy_end - period)
                        verdict = Verdict(kind, period, onset, span, end)
                    return verdict
            if run_fuzzy > run_exact and unit == "content":
                # lines match here with their numbers folded: copies differ in numbers only
                span = run_fuzzy + q
                if span >= cfg.fuzzy_copies_needed(period, numbers_only=True) * q:
                    return self._verdict("fuzzy_loop", period, n + 1 - span, span // q, end)
        return None

    def _check_overflow(self, n: int, end: int) -> Verdict | None:
        """More lines than the page holds, and the last one repeats one before it (its
        numbers folded): the shortest such block is the loop."""
        for q in range(1, min(self.config.max_block_lines, n) + 1):
            if self._fuzzy[q]:
                period = end - self._ends[n - q]
                copies = self._fuzzy[q] // q + 1
                kind = "line_loop" if q == 1 else "block_loop"
                return self._verdict(kind, period, max(0, n - q - self._fuzzy[q] + 1), copies, end)
        return None

    def _starts_mid_line(self, k: int) -> bool:
        """Whether line ``k`` ends with the line after it, as a separate word group, and is
        longer: the model was writing line ``k`` when it fell into a loop of that line (BPE
        tokenizes such a first copy differently, so the token view sees one copy fewer)."""
        if k < 0 or k + 1 >= len(self._lines):
            return False
        line, unit = self._lines[k], self._lines[k + 1]
        if len(unit) < self.config.reemission_min_chars or not has_letters(unit, 4):
            return False
        cut = len(line) - len(unit)
        return cut > 0 and line.endswith(unit) and not line[cut - 1].isalnum()

    def _check_reemission(self, norm: str, n: int, start: int, end: int) -> Verdict | None:
        cfg = self.config
        if len(norm) < cfg.reemission_min_chars or not has_letters(norm, 4):
            return None
        entry = self._seen.get(norm)
        if entry is None:
            self._seen[norm] = [1, n, start]
            return None
        if n and self._lines[n - 1] == norm:
            return None  # a run of the same line (a refrain sung twice) counts once
        entry[0] += 1
        count, first_line, first_token = entry
        if count < cfg.reemission_min_count:
            return None
        if (n - first_line) / (count - 1) > cfg.reemission_max_gap_lines:
            return None
        period = max(1, (end - first_token) // count)
        return Verdict("block_reemission", period, first_token, count, end)

    def _verdict(self, kind, period: int, first_line: int, repeats: int, end: int) -> Verdict:
        onset = self._begins[first_line]
        return Verdict(kind=kind, period=period, onset=onset, repeats=repeats, trip_at=end)

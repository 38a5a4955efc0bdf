"""Line-level views of the stream: repeated blocks of whole lines, and re-emitted lines."""

from __future__ import annotations

from .config import GuardConfig, UnitClass
from .echoes import EchoTracker
from .structure import (
    classify_unit,
    counted_sentence,
    has_letters,
    is_sentence,
    line_key,
    normalize_line,
)
from .verdict import LoopKind, Verdict

# Characters of a line's end under which earlier lines are found again (a restart).
_ENDING = 16


class LineTracker:
    """Follows completed lines. Blank lines are skipped (``A\\n\\nA`` repeats ``A``), and
    lines compare case- and whitespace-insensitively, so it catches loops the token view
    misses: blocks longer than ``max_period`` tokens, and copies that tokenize differently.

    Block periods are followed like token periods, by distance: a line looks up where it
    (and its numbers-folded key) occurred among the last ``max_block_lines`` lines, and only
    those distances are counted, so a line costs the number of its recent repeats."""

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
        self._ends: list[int] = []  # token index just past each line (its newline included)
        self._begins: list[int] = []
        self._where: dict[str, list[int]] = {}  # line -> its indices
        self._where_key: dict[str, list[int]] = {}  # numbers-folded line -> its indices
        self._exact: dict[int, tuple[int, int]] = {}  # distance -> (run, line it ends at)
        self._fuzzy: dict[int, tuple[int, int]] = {}
        self._seen: dict[str, list[int]] = {}  # line -> [count, first line, first token]
        self._endings: dict[str, int] = {}  # a long line's last characters -> that line
        self._restart: int | None = None  # a line re-emitted spliced into another, awaiting
        self._counter: tuple[str | None, int] = (None, 0)  # counted sentence, consecutive lines
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
        key = line_key(norm)
        n = len(self._lines)
        self._lines.append(norm)
        self._begins.append(start)
        self._ends.append(end)
        exact = _runs(self._where, self._exact, norm, n, self.config.max_block_lines)
        fuzzy = _runs(self._where_key, self._fuzzy, key, n, self.config.max_block_lines)
        verdict = self._check_blocks(exact, fuzzy, n, end)
        if verdict is None and self._overflow is not None and n + 1 > self._overflow:
            verdict = self._check_overflow(fuzzy, n, end)
        return (
            verdict
            or self._check_counter(norm, n, end)
            or self._check_restart(norm, n, end)
            or self._check_reemission(norm, n, start, end, exact)
            or self._echoes.feed(norm, start, end)
        )

    def _check_blocks(
        self, exact: dict[int, int], fuzzy: dict[int, int], n: int, end: int
    ) -> Verdict | None:
        threshold = self.config.min_copies - 1
        # hot from two copies and one line on: long blocks trip there (long_block_bytes)
        hot = [q for q, run in fuzzy.items() if run >= threshold * q or exact.get(q, 0) > q > 1]
        if not hot and exact.get(1) == threshold - 1 and self._starts_mid_line(n - 2):
            hot = [1]
        for q in sorted(hot):
            verdict = self._check_block(q, exact.get(q, 0), fuzzy.get(q, 0), n, end)
            if verdict is not None:
                return verdict
        return None

    def _check_block(
        self, q: int, run_exact: int, run_fuzzy: int, n: int, end: int
    ) -> Verdict | None:
        cfg = self.config
        block = "\n".join(self._lines[n - q + 1 :])
        period = end - self._ends[n - q]
        unit = _block_class(block)
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
                kind: LoopKind = "line_loop" if q == 1 else "block_loop"
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

    def _check_overflow(self, fuzzy: dict[int, int], n: int, end: int) -> Verdict | None:
        """More lines than the page holds, and the last one repeats one before it (its
        numbers folded): the shortest such block is the loop."""
        if not fuzzy:
            return None
        q = min(fuzzy)
        period = end - self._ends[n - q]
        kind: LoopKind = "line_loop" if q == 1 else "block_loop"
        copies = fuzzy[q] // q + 1
        return self._verdict(kind, period, max(0, n - q - fuzzy[q] + 1), copies, end)

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

    def _check_counter(self, norm: str, n: int, end: int) -> Verdict | None:
        """One sentence written again and again under a running counter: consecutive lines
        whose counted sentence is the same while the line changes."""
        cfg = self.config
        body = counted_sentence(norm)
        previous, run = self._counter
        if body is None:
            self._counter = (None, 0)
            return None
        run = run + 1 if body == previous and norm != self._lines[n - 1] else 1
        self._counter = (body, run)
        if run < cfg.counter_min_copies or not is_sentence(body, cfg.counter_min_words):
            return None
        period = max(1, (end - self._begins[n - run + 1]) // run)
        return self._verdict("fuzzy_loop", period, n - run + 1, run, end)

    def _check_restart(self, norm: str, n: int, end: int) -> Verdict | None:
        """The output starting over in the middle of a line: a line ends with an earlier
        line whole, behind a head of marks alone (``- �``), and the next line is the one that
        followed it then. A duplicated sheet starts on a line of its own; a refrain's lead-in
        (``Cantemos: Glória ...``) has words."""
        cfg = self.config
        restart, self._restart = self._restart, None
        if restart is not None and norm == self._lines[restart + 1]:
            period = max(1, (end - self._begins[restart]) // 2)
            return Verdict("block_reemission", period, self._begins[restart], 2, end)
        if len(norm) < cfg.restart_min_chars:
            return None
        ending = norm[-_ENDING:]
        earlier = self._endings.get(ending)
        if earlier is None:
            self._endings[ending] = n
        elif earlier < n - 1:
            head = norm[: -len(self._lines[earlier])]
            if norm.endswith(self._lines[earlier]) and head.strip() and not has_alnum(head):
                self._restart = earlier
        return None

    def _check_reemission(
        self, norm: str, n: int, start: int, end: int, exact: dict[int, int]
    ) -> Verdict | None:
        """The same line coming back, other text between its copies. A line that comes back
        with the line above it, at the same distance, in a block of records (a receipt's
        item block: the item, its discount code, its discount) is the block view's to judge:
        a receipt prints the same item again after others."""
        cfg = self.config
        if len(norm) < cfg.reemission_min_chars:
            return None
        for q, run in exact.items():
            if run < 2:
                continue
            if _block_class("\n".join(self._lines[n - min(run, q) + 1 : n + 1])) != "content":
                return None
        entry = self._seen.get(norm)
        if entry is None:
            if has_letters(norm, 4):  # judged once per distinct line
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


def _runs(
    where: dict[str, list[int]],
    runs: dict[int, tuple[int, int]],
    line: str,
    n: int,
    longest: int,
) -> dict[int, int]:
    """Record line ``n``; for each distance ``q`` at which it repeats a line among the last
    ``longest``, the run of consecutive lines that repeat the line ``q`` above (>= 1)."""
    found: dict[int, int] = {}
    seen = where.get(line)
    if seen is None:
        where[line] = [n]
        return found
    for k in reversed(seen):
        q = n - k
        if q > longest:
            break
        before = runs.get(q)
        run = before[0] + 1 if before is not None and before[1] == n - 1 else 1
        runs[q] = (run, n)
        found[q] = run
    seen.append(n)
    return found


def _block_class(block: str) -> UnitClass:
    """The class of a block of whole lines, read with its closing line break as a copy
    follows it: classify_unit turns a unit to start at a line start, which without it glued
    the last line to the first."""
    return classify_unit(block + "\n")


def has_alnum(text: str) -> bool:
    return any(c.isalnum() for c in text)

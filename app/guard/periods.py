"""Follows every candidate period of a symbol stream in constant amortized work per symbol."""

from __future__ import annotations

# Candidate state, kept in a small list for speed:
# [run, exact_run, misses, next_check, unit_class once judged, (copies, numbers_only) once judged]
RUN, EXACT, MISSES, NEXT, UNIT, NUMBERS_ONLY = 0, 1, 2, 3, 4, 5

# How many occurrences of a run of symbols before its latest also open candidates: a unit is
# found once some run of ``_MATCH`` of its symbols occurs at most this often plus one in it.
_EARLIER_REPEATS = 5
# Symbols in a row that must match at a distance for it to become a candidate.
_MATCH = 4
# An exact run at least this long that ends is reported as an echo (a copied phrase).
_ECHO_MIN = 6
# Token ids (+2) fit in this many bits (Qwen2.5's vocabulary has 151,665 tokens): the last
# ``_MATCH`` symbols pack into one int, a number counting as 1 and "before the stream" as 0.
_SYMBOL_BITS = 21
_KEPT = (1 << ((_MATCH - 1) * _SYMBOL_BITS)) - 1


class PeriodTracker:
    """Knows, after each symbol, which periods the end of the stream repeats with.

    Symbols are token ids; a token whose text is a number comes as ``~token_id`` (negative),
    so that copies differing only in their numbers can match. For a period ``p`` the *run*
    is how many of the latest symbols equal the symbol ``p`` places before them, two numbers
    counting as equal (the stream ends with ``(run + p) / p`` copies of a unit of ``p``
    symbols); the *exact run* counts uninterrupted identical symbols (exact loops). The run
    tolerates a small share of mismatches (fuzzy loops).

    Checking every ``p`` up to ``max_period`` would cost ``max_period`` steps per symbol;
    instead a period becomes a candidate only when the last four symbols (or one of their
    last few occurrences) lie exactly ``p`` places back, which is how every loop shows
    itself once its second copy starts, and a candidate is dropped as soon as the
    stream stops following it. Natural text keeps one or two candidates alive at a time.

    A candidate is *hot* when its run reaches its ``next_check``: the caller judges it then
    and moves ``next_check`` to the next run worth judging (the end of the next copy, the
    run at which a threshold could be met), so that a table row repeating legitimately is
    judged once per copy, not once per token.
    """

    __slots__ = (
        "max_period",
        "miss_ratio_inverse",
        "seq",
        "active",
        "echoes",
        "_first_check",
        "_key",
        "_last",
        "_last_raw2",
        "_before",
    )

    def __init__(self, max_period: int, max_miss_ratio: float, first_check: list[int]) -> None:
        """``first_check[p]``: the run at which a new candidate of period ``p`` is first hot."""
        self.max_period = max_period
        # a candidate dies when misses * inverse > run; 0 ratio means no misses allowed
        self.miss_ratio_inverse = 1.0 / max_miss_ratio if max_miss_ratio > 0 else float("inf")
        self.seq: list[int] = []
        self.active: dict[int, list] = {}
        # (position, period, exact run) of exact copies that just ended; the caller empties it
        self.echoes: list[tuple[int, int, int]] = []
        self._first_check = first_check
        self._key = 0  # the last _MATCH symbols, packed
        self._last: dict[int, int] = {}
        self._last_raw2: dict[int, int] = {}
        # per position: where the _MATCH symbols ending there occurred before (-1: never)
        self._before: list[int] = []

    def push(self, symbol: int) -> list[int] | None:
        """Append a symbol; the periods that became hot, or None."""
        seq, active = self.seq, self.active
        i = len(seq)
        seq.append(symbol)
        hot = dead = None
        for p, state in active.items():
            back = seq[i - p]
            if back == symbol or (back < 0 and symbol < 0):  # two numbers: equal once folded
                state[RUN] += 1
                state[EXACT] = state[EXACT] + 1 if back == symbol else 0
                if state[RUN] >= state[NEXT]:  # judged on a match only: a miss adds nothing
                    if hot is None:
                        hot = [p]
                    else:
                        hot.append(p)
            else:
                if state[EXACT] >= _ECHO_MIN:
                    self.echoes.append((i, p, state[EXACT]))
                state[EXACT] = 0
                state[MISSES] += 1
                if state[MISSES] * self.miss_ratio_inverse > state[RUN]:
                    if dead is None:
                        dead = [p]
                    else:
                        dead.append(p)
                else:
                    state[RUN] += 1
        if dead is not None:
            for p in dead:
                del active[p]
        # A candidate opens once _MATCH symbols in a row match at its distance: opening on
        # fewer would churn through the common pairs (" de", ", ") of natural text and the
        # short repeats all through tables and receipts, each candidate dying at once.
        key = ((self._key & _KEPT) << _SYMBOL_BITS) | (symbol + 2 if symbol >= 0 else 1)
        self._key = key
        last = self._last.get(key)
        self._last[key] = i
        self._before.append(-1 if last is None else last)
        if last is not None and last >= i - self.max_period:
            hot = self._open_repeats(i, last, hot)
        if symbol < 0 and i:
            # Folded numbers hide the period of a loop made only of numbers: " 20","2","5"
            # repeated (a year run) is one folded symbol over and over, period 1, whose raw
            # tokens never match. Its raw pairs give the real period.
            previous = seq[i - 1]
            raw = ((previous if previous >= 0 else ~previous) << _SYMBOL_BITS) | ~symbol
            last = self._last_raw2.get(raw)
            self._last_raw2[raw] = i
            if last is not None and last >= i - self.max_period and i - last not in active:
                hot = self._open(i, i - last, hot)
        return hot

    def _open_repeats(self, i: int, last: int, hot: list[int] | None) -> list[int] | None:
        """Open the distance to the latest occurrence ``last`` of the symbols ending at ``i``,
        and to their earlier ones: in a unit where every run of symbols recurs (A A B A B A:
        pairs 2 and 4 apart, never 6), the m-th occurrence back is one whole unit back, m
        being how often the run occurs in the unit. Bounded."""
        active, before = self.active, self._before
        lowest = i - self.max_period
        if i - last in active:
            return hot  # followed already: the stream repeats it, and its multiples with it
        for _ in range(_EARLIER_REPEATS + 1):
            if i - last not in active:
                hot = self._open(i, i - last, hot)
            last = before[last]
            if last < lowest:  # so is -1, no earlier occurrence
                break
        return hot

    def _open(self, i: int, p: int, hot: list[int] | None) -> list[int] | None:
        seq = self.seq
        # Measure how far back the period already holds: a loop whose unit repeats a
        # symbol internally is discovered a little late, and its run must not restart.
        # Bounded, so a late discovery costs at most a few copies of the unit. Identical
        # symbols first (the exact run), then numbers that differ (the run goes on).
        limit = max(0, i - 8 * p - 64, p - 1)
        j = i
        while j > limit and seq[j] == seq[j - p]:
            j -= 1
        exact = i - j
        while j > limit and seq[j] < 0 and seq[j - p] < 0:
            j -= 1
            while j > limit and seq[j] == seq[j - p]:
                j -= 1
        run = i - j
        if run == 0:
            return hot
        first = self._first_check[p]
        self.active[p] = [run, exact, 0, first, None, None]
        if run < first:
            return hot
        return [p] if hot is None else [*hot, p]

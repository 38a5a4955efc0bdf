"""Follows every candidate period of a symbol stream in constant amortized work per symbol."""

from __future__ import annotations

# Candidate state, kept in a small list for speed, as positions so that a matching symbol
# (the common case) writes nothing: [where the run started, where the exact run started,
# misses, where the candidate is next judged, unit class once judged, (copies,
# numbers_only) once judged]. ``runs`` turns the positions into lengths.
RUN_START, EXACT_START, MISSES, CHECK_AT, UNIT, NUMBERS_ONLY = 0, 1, 2, 3, 4, 5


def runs(state: list, i: int) -> tuple[int, int]:
    """(run, exact run) of a candidate after symbol ``i``."""
    return i - state[RUN_START] + 1, i - state[EXACT_START] + 1


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
# Where a run of symbols never occurred: further back than any period.
_NEVER = -(1 << 40)


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

    A candidate is *hot* when the stream reaches its ``check_at`` position: the caller
    judges it then and moves ``check_at`` to the next run worth judging (the end of the
    next copy, the run at which a threshold could be met), so that a table row repeating
    legitimately is judged once per copy, not once per token.
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
        # (position, period, exact run) of exact copies that just ended; the caller empties
        # it in place
        self.echoes: list[tuple[int, int, int]] = []
        self._first_check = first_check
        self._key = 0  # the last _MATCH symbols, packed
        self._last: dict[int, int] = {}
        self._last_raw2: dict[int, int] = {}
        # per position: where the _MATCH symbols ending there occurred before (_NEVER: never)
        self._before: list[int] = []

    def push(self, symbol: int) -> list[int] | None:
        """Append a symbol; the periods that became hot, or None.

        The guard's hot path, once per generated token: the candidate state is indexed
        with literals (0 run start, 1 exact run start, 2 misses, 3 check at) and attributes
        are read once, because this function is most of the guard's time. A hot candidate
        is judged on a match only: a miss adds nothing to it."""
        seq = self.seq
        i = len(seq)
        seq.append(symbol)
        hot = None
        active = self.active
        if active:
            dead = None
            for p, state in active.items():
                back = seq[i - p]
                if back == symbol:
                    if i >= state[3]:
                        if hot is None:
                            hot = [p]
                        else:
                            hot.append(p)
                elif back < 0 and symbol < 0:  # two numbers: equal once folded
                    state[1] = i + 1  # the exact run starts again after this one
                    if i >= state[3]:
                        if hot is None:
                            hot = [p]
                        else:
                            hot.append(p)
                else:  # a miss: the run goes on through a few of them (fuzzy loops)
                    if i - state[1] >= _ECHO_MIN:
                        self.echoes.append((i, p, i - state[1]))
                    state[1] = i + 1
                    state[2] += 1
                    if state[2] * self.miss_ratio_inverse > i - state[0]:
                        if dead is None:
                            dead = [p]
                        else:
                            dead.append(p)
            if dead is not None:
                for p in dead:
                    del active[p]
        # A candidate opens once _MATCH symbols in a row match at its distance: opening on
        # fewer would churn through the common pairs (" de", ", ") of natural text and the
        # short repeats all through tables and receipts, each candidate dying at once.
        key = self._key = ((self._key & _KEPT) << _SYMBOL_BITS) | (symbol + 2 if symbol >= 0 else 1)
        table = self._last
        last = table.get(key, _NEVER)
        table[key] = i
        self._before.append(last)
        if i - last <= self.max_period and i - last not in active:
            hot = self._open_repeats(i, last, hot)
        if symbol < 0 and i:
            hot = self._open_numbers(i, symbol, hot)
        return hot

    def _open_numbers(self, i: int, symbol: int, hot: list[int] | None) -> list[int] | None:
        """Folded numbers hide the period of a loop made only of numbers: " 20","2","5"
        repeated (a year run) is one folded symbol over and over, period 1, whose raw tokens
        never match. Its raw pairs give the real period."""
        previous = self.seq[i - 1]
        raw = ((previous if previous >= 0 else ~previous) << _SYMBOL_BITS) | ~symbol
        last = self._last_raw2.get(raw, _NEVER)
        self._last_raw2[raw] = i
        if i - last <= self.max_period and i - last not in self.active:
            hot = self._open(i, i - last, hot)
        return hot

    def _open_repeats(self, i: int, last: int, hot: list[int] | None) -> list[int] | None:
        """Open the distance to the latest occurrence ``last`` of the symbols ending at ``i``,
        and to their earlier ones: in a unit where every run of symbols recurs (A A B A B A:
        pairs 2 and 4 apart, never 6), the m-th occurrence back is one whole unit back, m
        being how often the run occurs in the unit. Bounded. Not called when the latest
        distance is followed already: the stream repeats it, and its multiples with it."""
        active, before = self.active, self._before
        lowest = i - self.max_period
        for _ in range(_EARLIER_REPEATS + 1):
            if i - last not in active:
                hot = self._open(i, i - last, hot)
            last = before[last]
            if last < lowest:  # so is _NEVER: no earlier occurrence
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
        start = i - run + 1
        check_at = start + self._first_check[p] - 1
        self.active[p] = [start, i - exact + 1, 0, check_at, None, None]
        if i < check_at:
            return hot
        return [p] if hot is None else [*hot, p]

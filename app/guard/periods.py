"""Follows every candidate period of a symbol stream in constant amortized work per symbol."""

from __future__ import annotations

# Candidate state, kept in a small list for speed:
# [run, exact_run, misses, unit_class, (copies, numbers_only) once judged].
RUN, EXACT, MISSES, UNIT, NUMBERS_ONLY = 0, 1, 2, 3, 4

# How many of a pair's occurrences before its latest also open candidates: a unit is found
# once one of its pairs occurs at most this often plus one in it.
_EARLIER_PAIRS = 7


class PeriodTracker:
    """Knows, after each symbol, which periods the end of the stream repeats with.

    For a period ``p`` the *run* is how many of the latest symbols equal the symbol ``p``
    places before them, so the stream ends with ``(run + p) / p`` copies of a unit of ``p``
    symbols. Checking every ``p`` up to ``max_period`` would cost ``max_period`` steps per
    symbol; instead a period becomes a candidate only when the current symbol (or the
    current pair, or one of that pair's last few occurrences) lies exactly ``p`` places
    back, which is how every loop shows itself once its second copy starts, and a
    candidate is dropped as soon as the stream stops following it. Natural text keeps one
    or two candidates alive at a time.

    Each symbol comes as a pair: ``norm`` (numbers folded together, which lets copies that
    differ only in their numbers match) and ``raw``. ``run`` counts matches of ``norm`` and
    tolerates a small share of mismatches (fuzzy loops); ``exact_run`` counts uninterrupted
    matches of ``raw`` (exact loops).
    """

    __slots__ = (
        "max_period",
        "min_copies",
        "twice_slack",
        "miss_ratio_inverse",
        "norm",
        "raw",
        "active",
        "_last1",
        "_last2",
        "_last_raw2",
        "_before2",
    )

    def __init__(
        self, max_period: int, max_miss_ratio: float, min_copies: int, twice_slack: int = 4
    ) -> None:
        self.max_period = max_period
        self.twice_slack = twice_slack
        self.min_copies = min_copies - 1  # a run of (min_copies - 1) * p is min_copies copies
        # a candidate dies when misses * inverse > run; 0 ratio means no misses allowed
        self.miss_ratio_inverse = 1.0 / max_miss_ratio if max_miss_ratio > 0 else float("inf")
        self.norm: list[int] = []
        self.raw: list[int] = []
        self.active: dict[int, list] = {}
        self._last1: dict[int, int] = {}
        self._last2: dict[int, int] = {}
        self._last_raw2: dict[int, int] = {}
        # per position i >= 1: where the pair ending there occurred before (-1: never)
        self._before2: list[int] = []

    def push(self, norm_symbol: int, raw_symbol: int) -> bool:
        """Append a symbol; True when some candidate has reached ``min_copies`` copies, or
        is about to complete its second copy exactly (within ``twice_slack`` symbols)."""
        norm, raw, active, slack = self.norm, self.raw, self.active, self.twice_slack
        i = len(norm)
        norm.append(norm_symbol)
        raw.append(raw_symbol)
        dead = None
        hot = False
        for p, state in active.items():
            if norm[i - p] == norm_symbol:
                state[RUN] += 1
                exact = state[EXACT] = state[EXACT] + 1 if raw[i - p] == raw_symbol else 0
                if state[RUN] >= self.min_copies * p or (p - slack <= exact <= p and exact >= 6):
                    hot = True
            else:
                state[MISSES] += 1
                state[EXACT] = 0
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

        # Distances beyond max_period or already followed are filtered here, before the
        # call: most repeats of natural text (" de" a page apart) are of that sort.
        max_period = self.max_period
        last1, last2, before = self._last1, self._last2, self._before2
        last = last1.get(norm_symbol)
        last1[norm_symbol] = i
        # A candidate opens once two symbols in a row match at its distance: opening on
        # one would churn through every common token (" de", ",") of natural text.
        if (
            last is not None
            and 0 < last >= i - max_period
            and norm[i - 1] == norm[last - 1]
            and i - last not in active
        ):
            hot = self._open(i, i - last) or hot
        if i:
            pair = (norm[i - 1] << 21) | (norm_symbol + 1)
            last = last2.get(pair)
            last2[pair] = i
            before.append(-1 if last is None else last)
            if last is not None and last >= i - max_period:
                if i - last not in active:
                    hot = self._open(i, i - last) or hot
                # Walk back through the pair's earlier occurrences too: in a unit where every
                # symbol and pair recurs (A A B A B A: pairs 2 and 4 apart, never 6), the
                # pair's m-th occurrence back is one whole unit back, m being how often the
                # pair occurs in the unit. Bounded, and only where three symbols match, so
                # the common pairs of clean text do not open a candidate each.
                lowest = max(2, i - max_period)
                third = norm[i - 2]  # i >= 2: the pair occurred before
                for _ in range(_EARLIER_PAIRS):
                    last = before[last - 1]
                    if last < lowest:  # so is -1, no earlier occurrence
                        break
                    if norm[last - 2] == third and i - last not in active:
                        hot = self._open(i, i - last) or hot
            if raw_symbol != norm_symbol:
                # Folded numbers hide the period of a loop made only of numbers: " 20","2","5"
                # repeated (a year run) is one folded symbol over and over, period 1, whose
                # raw tokens never match. Its raw pairs give the real period.
                pair = (raw[i - 1] << 21) | (raw_symbol + 1)
                last = self._last_raw2.get(pair)
                self._last_raw2[pair] = i
                if last is not None and last >= i - max_period and i - last not in active:
                    hot = self._open(i, i - last) or hot
        return hot

    def _open(self, i: int, p: int) -> bool:
        if p > self.max_period or p in self.active:
            return False
        norm, raw = self.norm, self.raw
        # Measure how far back the period already holds: a loop whose unit repeats a
        # symbol internally is discovered a little late, and its run must not restart.
        # Bounded, so a late discovery costs at most a few copies of the unit.
        limit = max(0, i - 8 * p - 64, p - 1)
        j = i
        while j > limit and norm[j] == norm[j - p]:
            j -= 1
        run = i - j
        if run == 0:
            return False
        k = i
        while k > j and raw[k] == raw[k - p]:
            k -= 1
        self.active[p] = [run, i - k, 0, None, None]
        return run >= self.min_copies * p

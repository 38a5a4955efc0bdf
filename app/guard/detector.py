"""The streaming loop detector: feed it every generated token, it says when the output loops."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .config import DEFAULT_CONFIG, GuardConfig, UnitClass
from .lines import LineTracker
from .periods import EXACT, NUMBERS_ONLY, RUN, UNIT, PeriodTracker
from .structure import LIST_MARKER, classify_unit, fold_numbers, word_count
from .verdict import LoopKind, Verdict

# Token ids whose text is a number share this symbol in the fuzzy stream.
_NUMBER = -1
# Below this period a unit without a newline is an n-gram; from it on, an inline block.
_INLINE_MIN_PERIOD = 16


class LoopDetector:
    """One per generation. ``feed`` each step's new token ids and their text; it returns a
    ``Verdict`` the first time the output is judged degenerate, ``None`` otherwise.

    Three views of the stream run side by side, each in constant amortized work per token:
    token periods (any unit up to ``max_period`` tokens, exact or fuzzy), line periods
    (blocks of whole lines of any length, whitespace-insensitive) and line re-emission
    (the same line coming back with other text in between).
    """

    def __init__(self, config: GuardConfig = DEFAULT_CONFIG, page_lines: int | None = None) -> None:
        """``page_lines``: text lines the page image holds (app/page_lines.py), when known."""
        self.config = config
        self.page_lines = page_lines
        self.reset()

    def reset(self) -> None:
        """Forget everything: the detector is as new."""
        cfg = self.config
        self.verdict: Verdict | None = None
        self._tokens = PeriodTracker(
            cfg.max_period, cfg.fuzzy_max_miss_ratio, cfg.min_copies, cfg.twice_slack_tokens
        )
        self._lines = LineTracker(cfg, self.page_lines)
        self._pending_line = self._lines.current
        self._chunks: list[str] = []
        self._ends: list[int] = []  # per token: characters emitted up to and including it
        self._chars = 0
        self._text = ""  # lazily joined copy of _chunks, only when a unit must be read
        self._joined = 0
        self._numeric: dict[int, bool] = {}
        self._escape = False  # the last delta ended inside a JSON escape (a lone backslash)

    @property
    def tokens_seen(self) -> int:
        return len(self._ends)

    def feed(self, token_ids: Sequence[int], text_delta: str = "") -> Verdict | None:
        """Consume one step of output. ``text_delta`` is the text of ``token_ids``."""
        if self.verdict is not None:
            return None
        before = self._chars
        if text_delta:
            self._chunks.append(text_delta)
            self._chars += len(text_delta)
        numeric, ends, push = self._numeric, self._ends, self._tokens.push
        last = len(token_ids) - 1
        for n, tid in enumerate(token_ids):
            is_number = numeric.get(tid)
            if is_number is None:
                # A token's text is only known when it arrives alone.
                if last or not text_delta:
                    is_number = False
                else:
                    is_number = numeric[tid] = text_delta.strip().isdigit()
            ends.append(self._chars if n == last else before)
            if push(_NUMBER if is_number else tid, tid):
                verdict = self._check_tokens()
                if verdict is not None:
                    self.verdict = verdict
                    return verdict
        if "\\" in text_delta or self._escape:
            text_delta = self._unescape(text_delta)
        if "\n" in text_delta:
            verdict = self._lines.feed(text_delta, len(ends))
            if verdict is not None:
                self.verdict = verdict
                return verdict
        elif text_delta:
            self._pending_line.append(text_delta)  # LineTracker.extend, inlined: every token
        return None

    def _unescape(self, text: str) -> str:
        """JSON's ``\\n`` as a line break for the line views: the served model writes its page
        as a JSON string, whose lines are escapes (the escape may span two tokens)."""
        if self._escape:
            self._escape = False
            if text.startswith("n"):
                text = "\n" + text[1:]
        text = text.replace("\\\\", "\x00").replace("\\n", "\n")
        if text.endswith("\\"):
            self._escape = True
            text = text[:-1]
        return text.replace("\x00", "\\")

    def _check_tokens(self) -> Verdict | None:
        cfg = self.config
        i = len(self._ends) - 1
        for p, state in self._tokens.active.items():
            run = state[RUN]
            exact = state[EXACT]
            if (
                p - cfg.twice_slack_tokens <= exact <= p
                and exact >= 6
                and not self._shorter_period_covers(p, exact)
                and self._twice(p, exact, i)
            ):
                onset = i + 1 - exact - p
                return Verdict(self._token_kind(p, i), p, onset, repeats=2, trip_at=i + 1)
            if run + p < cfg.min_copies * p:
                continue
            unit = state[UNIT]
            if unit is None:
                unit = state[UNIT] = classify_unit(self._text_between(i - p + 1, i + 1))
            if exact and self._over_threshold(exact, p, unit, cfg.copies_needed(p, unit)):
                return self._verdict(self._token_kind(p, i), p, exact, i)
            # Numbers and separators vary legitimately row after row (tables, indexes): only
            # units with words can loop fuzzily, and copies that differ only in their
            # numbers need many more copies (a payment schedule is not a counting loop).
            if (
                exact < run
                and unit == "content"
                and run + p >= cfg.fuzzy_copies_needed(p) * p
                and (
                    not self._numbers_only(state, p, i)
                    or run + p >= cfg.fuzzy_copies_needed(p, numbers_only=True) * p
                )
            ):
                return self._verdict("fuzzy_loop", p, run, i)
        return None

    def _shorter_period_covers(self, p: int, exact: int) -> bool:
        """Whether a shorter period already explains the span (four copies of a short unit
        are not two copies of a long one: the short unit's own threshold decides)."""
        return any(q < p and state[RUN] >= exact for q, state in self._tokens.active.items())

    def _twice(self, p: int, exact: int, i: int) -> bool:
        """Whether the span just written again, whole and right after its first copy, is a
        sentence or line of prose long enough that a page would not print it twice in a
        row. Multi-line blocks written twice stay legitimate (two copies of a receipt, a
        duplicated sheet), and so does an echo that begins inside a sentence."""
        cfg = self.config
        text = self._text_between(i - exact + 1, i + 1)
        if "\n" in text.rstrip("\n") or len(text.strip()) < cfg.twice_min_chars:
            return False
        if word_count(text) < cfg.twice_min_words:
            return False
        letters = sum(1 for c in text if c.isalpha())
        if letters * 2 < len(text) or classify_unit(text) != "content":
            return False
        first = i - exact - p + 1  # the first copy's first token
        start = self._ends[first - 1] if first > 0 else 0
        line_start = self._text.rfind("\n", 0, start) + 1
        prefix = self._text[line_start:start].strip()
        marker = LIST_MARKER.match(self._text[line_start : start + len(text)].lstrip())
        if marker and marker.end() >= len(prefix):
            return False  # "I - ...", "II - ...": an enumeration, the numbers view decides
        return len(prefix) <= 4 or prefix[-1] in ".!?>)]。！？"

    def _numbers_only(self, state: list, p: int, i: int) -> bool:
        """Whether the latest copy of a fuzzy unit differs from the one before only in its
        numbers; judged once per copy."""
        copies = (state[RUN] + p) // p
        judged = state[NUMBERS_ONLY]
        if judged is None or judged[0] != copies:
            last = self._text_between(i - p + 1, i + 1)
            before = self._text_between(i - 2 * p + 1, i - p + 1)
            judged = state[NUMBERS_ONLY] = (copies, fold_numbers(last) == fold_numbers(before))
        return judged[1]

    def _over_threshold(self, run: int, p: int, unit: UnitClass, copies: int) -> bool:
        cfg = self.config
        if run + p < cfg.min_copies * p:
            return False
        if self.page_lines == 0 and text_free(
            self._text_between(len(self._ends) - p, len(self._ends))
        ):
            return True  # the page holds no text: whatever repeats is not on it
        if unit == "structural":
            i = len(self._ends) - 1
            text = self._text_between(i - p + 1, i + 1)
            start = i - run - p
            chars = self._ends[i] - (self._ends[start] if start >= 0 else 0)
            if not text.strip():
                return chars >= cfg.whitespace_max_chars
            if "\n" in text:
                return run + p >= cfg.structural_max_lines * p
            return chars >= cfg.structural_max_chars
        return run + p >= copies * p

    def _token_kind(self, p: int, i: int) -> LoopKind:
        if p == 1:
            return "token_run"
        unit = self._text_between(i - p + 1, i + 1)
        if "\n" in unit.strip("\n"):
            return "block_loop"
        if "\n" in unit:
            return "line_loop"
        return "inline_block" if p >= _INLINE_MIN_PERIOD else "ngram_loop"

    def _verdict(self, kind: LoopKind, p: int, run: int, i: int) -> Verdict:
        return Verdict(
            kind=kind, period=p, onset=i + 1 - run - p, repeats=(run + p) // p, trip_at=i + 1
        )

    def _text_between(self, start: int, stop: int) -> str:
        """Text of tokens ``start .. stop-1``."""
        if self._joined < len(self._chunks):
            self._text += "".join(self._chunks[self._joined :])
            self._joined = len(self._chunks)
        begin = self._ends[start - 1] if start > 0 else 0
        return self._text[begin : self._ends[stop - 1]]


def text_free(unit: str) -> bool:
    """A unit that transcribes nothing a text-free page could hold: not whitespace alone
    (JSON indentation) nor the schema's own keys."""
    return bool(unit.strip()) and '":' not in unit


def scan(
    token_ids: Sequence[int],
    token_texts: Sequence[str] | None = None,
    config: GuardConfig = DEFAULT_CONFIG,
) -> Verdict | None:
    """Run a whole finished output through a fresh detector (offline labelling)."""
    detector = LoopDetector(config)
    texts: Iterable[str] = token_texts if token_texts is not None else [""] * len(token_ids)
    for tid, text in zip(token_ids, texts, strict=True):
        verdict = detector.feed((tid,), text)
        if verdict is not None:
            return verdict
    return None

"""The streaming loop detector: feed it every generated token, it says when the output loops."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .config import DEFAULT_CONFIG, GuardConfig, UnitClass
from .fuzzy import fuzzy_trips
from .lines import LineTracker
from .periods import CHECK_AT, RUN_START, UNIT, PeriodTracker, runs
from .structure import LIST_MARKER, classify_unit, word_count
from .stutters import StutterTracker
from .verdict import LoopKind, Verdict

# Below this period a unit without a newline is an n-gram; from it on, an inline block.
_INLINE_MIN_PERIOD = 16
# The characters of a markdown or ASCII table's separator row.
_TABLE_RULE = "-:|+="
# Distinct plain token texts remembered (bounds memory on adversarial streams).
_PLAIN_TEXTS = 65_536
# The end of the served JSON after its last field's text (app/prompt.py): ``"}``.
_JSON_END = re.compile(r'"\s*}\s*$')
# Tokens looked back at most to find where the current line began.
_LINE_BACK = 256


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
        self._first_check = _first_checks(config)
        self.reset()

    def reset(self) -> None:
        """Forget everything: the detector is as new."""
        cfg = self.config
        self.verdict: Verdict | None = None
        self._tokens = PeriodTracker(cfg.max_period, cfg.fuzzy_max_miss_ratio, self._first_check)
        self._lines = LineTracker(cfg, self.page_lines)
        self._pending_line = self._lines.current
        self._texts: list[str] = []  # per token: its text (a step's text goes to its last token)
        # bound once: feed runs per token and is most of the guard's time with push
        self._add_text = self._texts.append
        self._push = self._tokens.push
        self._echoes = self._tokens.echoes
        self._symbols: dict[int, int] = {}  # token id -> its symbol for the period tracker
        # token texts seen to hold no line break and no backslash (a set lookup is one step)
        self._plain: set[str] = {""}
        self._escape = False  # the last delta ended inside a JSON escape (a lone backslash)
        self._stutters = StutterTracker(cfg)

    @property
    def tokens_seen(self) -> int:
        return len(self._texts)

    def feed(self, token_ids: Sequence[int], text_delta: str = "") -> Verdict | None:
        """Consume one step of output. ``text_delta`` is the text of ``token_ids``."""
        if self.verdict is not None:
            return None
        if len(token_ids) == 1:
            tid = token_ids[0]
            self._add_text(text_delta)
            symbol = self._symbols.get(tid)
            if symbol is None:  # a number's symbol is ~tid (app/guard/periods.py)
                symbol = self._symbols[tid] = ~tid if text_delta.strip().isdigit() else tid
            hot = self._push(symbol)
            if hot is not None and self._check_tokens(hot):
                return self._tripped()
            if self._echoes and self._check_echoes():
                return self._tripped()
            if text_delta in self._plain and not self._escape:  # most tokens
                if text_delta:
                    self._pending_line.append(text_delta)  # LineTracker.extend, inlined
                return None
        elif self._feed_tokens(token_ids, text_delta):
            return self._tripped()
        raw = text_delta
        if "\\" in text_delta or self._escape:
            text_delta = self._unescape(text_delta)
        if "\n" in text_delta:
            verdict = self._lines.feed(text_delta, len(self._texts))
            if verdict is not None:
                self.verdict = verdict
                return verdict
        elif text_delta:
            self._pending_line.append(text_delta)  # LineTracker.extend, inlined
            if "\\" not in raw and len(self._plain) < _PLAIN_TEXTS:
                self._plain.add(raw)  # neither an escape nor a line break: plain from now on
        return None

    def finish(self) -> Verdict | None:
        """The output ended by itself: its last line is judged as finished (no line break
        follows the last line of a page), the served JSON's closing quote and brace set
        aside. Judged so, an output is judged as the same text with a final line break."""
        if self.verdict is not None:
            return None
        pending = "".join(self._pending_line)
        if not pending.strip():
            return None
        self._pending_line.clear()
        self._pending_line.append(_JSON_END.sub("", pending))
        self.verdict = self._lines.feed("\n", len(self._texts))
        return self.verdict

    def _tripped(self) -> Verdict | None:
        """The verdict a check just set. Read here, not in ``feed``: there, after the check
        at its top, the type checker takes it for None, and the compiled guard (mypyc compiles
        the type checker's view) would enforce that."""
        return self.verdict

    def _feed_tokens(self, token_ids: Sequence[int], text_delta: str) -> bool:
        """Several tokens in one step (an engine that fell behind hands over a few at once):
        their text is known as a whole and belongs to the last one, so what became hot is
        judged once the step's last token is in, when the text of every unit is known.

        A token first seen here has no text of its own to tell a number by: it is taken for a
        word, and stays one for the generation. A symbol must not change between copies: a
        number token pushed as a word in one step and as a number in the next broke the exact
        run, and a rewind kept several copies of the loop (a vLLM test, under load)."""
        symbols, texts, push = self._symbols, self._texts, self._tokens.push
        last = len(token_ids) - 1
        step_hot: set[int] = set()
        for n, tid in enumerate(token_ids):
            texts.append(text_delta if n == last else "")
            symbol = symbols.get(tid)
            if symbol is None:
                symbol = symbols[tid] = tid
            hot = push(symbol)
            if hot is not None:
                step_hot.update(hot)
        if step_hot and self._check_tokens(sorted(step_hot)):
            return True
        return bool(self._echoes) and self._check_echoes()

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

    def _check_tokens(self, hot: list[int]) -> bool:
        """Judge the periods that became hot; set ``verdict`` and say so when one trips."""
        cfg = self.config
        i = len(self._texts) - 1
        active = self._tokens.active
        for p in hot:
            state = active.get(p)
            if state is None:
                continue
            run, exact = runs(state, i)
            if (
                p - cfg.twice_slack_tokens <= exact <= p
                and exact >= 6
                and not self._shorter_period_covers(p, exact)
                and self._twice(p, exact, i)
            ):
                onset = i + 1 - exact - p
                self.verdict = Verdict(self._token_kind(p, i), p, onset, repeats=2, trip_at=i + 1)
                return True
            if run + p >= cfg.min_copies * p:
                unit = state[UNIT]
                if unit is None:
                    unit = state[UNIT] = classify_unit(self._text_between(i - p + 1, i + 1))
                if exact and self._over_threshold(exact, p, unit, cfg.copies_needed(p, unit)):
                    self.verdict = self._verdict(self._token_kind(p, i), p, exact, i)
                    return True
                if (
                    exact < run
                    and unit == "content"
                    and fuzzy_trips(cfg, state, p, i, run, self._text_between)
                ) or (exact < run and unit == "structural" and self._drifting_marks(p, run, i)):
                    self.verdict = self._verdict("fuzzy_loop", p, run, i)
                    return True
            state[CHECK_AT] = state[RUN_START] + self._next_check(state, p, run, exact) - 1
        return False

    def _check_echoes(self) -> bool:
        """Exact copies that just ended: stutters (app/guard/stutters.py)."""
        echoes = list(self._echoes)
        self._echoes.clear()
        verdict = self._stutters.feed(echoes, self._text_between)
        if verdict is not None:
            self.verdict = verdict
        return verdict is not None

    def _next_check(self, state: list, p: int, run: int, exact: int) -> int:
        """The next run at which the candidate could trip: a lower bound, so that nothing is
        missed, and far enough that a legitimately repeated unit is judged about once a copy."""
        cfg = self.config
        unit = state[UNIT]
        upcoming = []
        if exact < p:  # an exact second copy may still be written: the twice rule's window
            upcoming.append(run + max(1, max(6, p - cfg.twice_slack_tokens) - exact))
        floor = (cfg.min_copies - 1) * p
        if run < floor:
            upcoming.append(floor)
        elif unit == "structural":
            upcoming.append(run + self._structural_wait(run, p))
        elif self.page_lines == 0:
            upcoming.append(run + p)  # whether the unit is text-free decides: once a copy
        else:
            needed = (cfg.copies_needed(p, unit) - 1) * p
            upcoming.append(run + max(1, needed - exact))
            if unit == "content":
                fuzzy = (cfg.fuzzy_copies_needed(p) - 1) * p
                upcoming.append(fuzzy if run < fuzzy else run + p)
        return min(upcoming)

    def _drifting_marks(self, p: int, run: int, i: int) -> bool:
        """A run of marks whose copies drift (``\\! \\! / \\! \\! \\! /``: a formula
        reader writing negative spaces with a count that changes), within one line: it trips
        at the length an exact run of its marks would, as a leader or a rule does not drift."""
        span = self._text_between(i - run - p + 1, i + 1)
        if "\n" in span or not span.strip():
            return False
        if sum(1 for c in span if c.isalnum()) * 10 > len(span) - span.count(" "):
            return False  # words or numbers among the marks: not filler alone
        return len(span) >= _structural_limit(self.config, span)

    def _shorter_period_covers(self, p: int, exact: int) -> bool:
        """Whether a shorter period already explains the span (four copies of a short unit
        are not two copies of a long one: the short unit's own threshold decides)."""
        i = len(self._texts) - 1
        return any(q < p and runs(state, i)[0] >= exact for q, state in self._tokens.active.items())

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
        head = self._line_before(first)
        prefix = head.strip()
        marker = LIST_MARKER.match((head + self._text_between(first, first + exact)).lstrip())
        if marker and marker.end() >= len(prefix):
            return False  # "I - ...", "II - ...": an enumeration, the numbers view decides
        return len(prefix) <= 4 or prefix[-1] in ".!?>)]。！？"

    def _line_before(self, token: int) -> str:
        """The text of the current line before ``token`` (its last ``_LINE_BACK`` tokens at
        most); a JSON-escaped line break counts."""
        texts, parts = self._texts, []
        for k in range(token - 1, max(-1, token - 1 - _LINE_BACK), -1):
            text = texts[k]
            newline, escaped = text.rfind("\n"), text.rfind("\\n")
            if newline >= 0 or escaped >= 0:
                parts.append(text[max(newline + 1, escaped + 2) :])
                break
            parts.append(text)
        return "".join(reversed(parts))

    def _over_threshold(self, run: int, p: int, unit: UnitClass, copies: int) -> bool:
        cfg = self.config
        if run + p < cfg.min_copies * p:
            return False
        i = len(self._texts) - 1
        if self.page_lines == 0 and text_free(self._text_between(i - p + 1, i + 1)):
            return True  # the page holds no text: whatever repeats is not on it
        if unit == "structural":
            text = self._text_between(i - p + 1, i + 1)
            if not text.strip():
                return _blank_needs(cfg, self._text_between(i - run - p + 1, i + 1)) <= 0
            chars = sum(map(len, self._texts[max(0, i - run - p + 1) : i + 1]))
            if "\n" in text:
                return run + p >= cfg.structural_max_lines * p
            return chars >= _structural_limit(cfg, text)
        return run + p >= copies * p

    def _structural_wait(self, run: int, p: int) -> int:
        """Tokens before a repeated separator could reach its length threshold: the
        characters missing over the unit's longest token (a lower bound)."""
        cfg = self.config
        i = len(self._texts) - 1
        unit = self._texts[max(0, i - p + 1) : i + 1]
        text = "".join(unit)
        if "\n" in text and text.strip():
            return max(1, (cfg.structural_max_lines - 1) * p - run)
        longest = max(1, max(map(len, unit)))
        if not text.strip():
            needed = _blank_needs(cfg, self._text_between(i - run - p + 1, i + 1))
            return max(1, -(-needed // longest))
        chars = sum(map(len, self._texts[max(0, i - run - p + 1) : i + 1]))
        return max(1, -(-(_structural_limit(cfg, text) - chars) // longest))

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
        """Text of tokens ``start .. stop-1``, JSON's escaped line breaks as line breaks:
        the served model writes its page as a JSON string, and a block of lines is a block
        of lines there too."""
        text = "".join(self._texts[max(0, start) : stop])
        if "\\" in text:
            text = text.replace("\\\\", "\x00").replace("\\n", "\n").replace("\x00", "\\")
        return text


def _first_checks(config: GuardConfig) -> list[int]:
    """Per period: the run at which a new candidate is first judged (the twice rule's window
    while its second copy is written, else its ``min_copies``-th copy)."""
    checks = [0]
    for p in range(1, config.max_period + 1):
        floor = (config.min_copies - 1) * p
        window = max(6, p - config.twice_slack_tokens)
        checks.append(window if window <= p else floor)
    return checks


def _blank_needs(cfg: GuardConfig, span: str) -> int:
    """Characters a run of whitespace must still grow by to trip (<= 0: it trips): its last
    line reaching ``whitespace_max_chars``, or its line breaks ``blank_max_lines``. A lower
    bound, so that scheduling the next check on it misses nothing."""
    lines = span.split("\n")
    if max(map(len, lines)) >= cfg.whitespace_max_chars:
        return 0
    return min(cfg.whitespace_max_chars - len(lines[-1]), cfg.blank_max_lines - len(lines) + 1)


def _structural_limit(cfg: GuardConfig, unit: str) -> int:
    """Characters a repeated separator may run within a line: more for a table's separator
    row (``|-----|:---:|``) than for anything else (cells, leaders, rules)."""
    rule = unit.strip()
    if "|" in rule and not rule.strip(_TABLE_RULE):
        return cfg.table_rule_max_chars
    return cfg.structural_max_chars


def text_free(unit: str) -> bool:
    """A unit that transcribes nothing a text-free page could hold: not whitespace alone
    (JSON indentation) nor the schema's own keys."""
    return bool(unit.strip()) and '":' not in unit


def scan(
    token_ids: Sequence[int],
    token_texts: Sequence[str] | None = None,
    config: GuardConfig = DEFAULT_CONFIG,
    page_lines: int | None = None,
    finished: bool = True,
) -> Verdict | None:
    """Run a whole output through a fresh detector (offline labelling); ``page_lines``:
    text lines the page image holds, when the page is at hand; ``finished``: the output
    ended by itself (not cut at a token limit), so its last line is a finished line."""
    detector = LoopDetector(config, page_lines)
    texts: Iterable[str] = token_texts if token_texts is not None else [""] * len(token_ids)
    for tid, text in zip(token_ids, texts, strict=True):
        verdict = detector.feed((tid,), text)
        if verdict is not None:
            return verdict
    return detector.finish() if finished else None

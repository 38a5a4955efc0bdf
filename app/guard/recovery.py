"""The recovery policy: what to generate next after the detector trips (pure decisions, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from .verdict import Verdict

AttemptMode = Literal["initial", "resume", "retry"]
Strategy = Literal["rewind", "retry"]

# Loops whose copies are not identical have no clean "one copy" to keep: start over.
_NO_REWIND = frozenset({"fuzzy_loop", "block_reemission"})


@dataclass(frozen=True)
class RecoveryConfig:
    strategy: Strategy = "retry"
    """``rewind``: keep the output up to the end of the loop's first copy and resume with the
    loop blocked, then fall back to retries; ``retry``: start over at once. Default
    ``retry``: on the embedded model's looping pages (bench/recovery.py, 16 pages) rewind
    spent 12 % fewer tokens but returned worse text (CER 0.83 vs 0.72)."""
    max_attempts: int = 3
    """Generations per page, the first one included."""
    temperatures: tuple[float, ...] = (0.0, 0.4, 0.8)
    """Temperature of the first attempt, then of each retry from scratch (olmOCR's ladder
    idea); the last value repeats if attempts outnumber it."""
    ban_ngram: int = 4
    """Length of the loop's opening n-gram banned for the rest of a resumed generation
    (units shorter than 2 tokens only ban the first step)."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if not self.temperatures or any(t < 0 for t in self.temperatures):
            raise ValueError("temperatures must be a non-empty list of values >= 0")
        if self.ban_ngram < 2:
            raise ValueError("ban_ngram must be >= 2")

    def temperature(self, retry: int) -> float:
        return self.temperatures[min(retry, len(self.temperatures) - 1)]

    def starting_at(self, temperature: float) -> RecoveryConfig:
        """The ladder for a client that asked for ``temperature``: the first attempt at it,
        each retry at the ladder's next value above it (olmOCR's own retries climb too)."""
        rungs = tuple(max(t, temperature) for t in self.temperatures[1:])
        return replace(self, temperatures=(temperature, *rungs))


@dataclass(frozen=True)
class Attempt:
    number: int
    """1 for the first generation."""
    mode: AttemptMode
    temperature: float
    prefix_token_ids: tuple[int, ...] = ()
    banned_first_token_ids: frozenset[int] = frozenset()
    banned_sequences: tuple[tuple[int, ...], ...] = ()
    seed: int | None = None


@dataclass
class AttemptResult:
    attempt: Attempt
    token_ids: list[int] = field(default_factory=list)
    """The whole output: the attempt's prefix followed by what it generated."""
    verdict: Verdict | None = None
    finish_reason: str | None = None
    logprobs: list[float | None] = field(default_factory=list)
    """Each generated token's log-probability (None where the engine gave none); the
    prefix's tokens are not in it."""
    prompt_tokens: int | None = None

    @property
    def clean_length(self) -> int:
        """Tokens of the output that precede any loop."""
        if self.verdict is None:
            return len(self.token_ids)
        return min(len(self.token_ids), self.verdict.onset + self.verdict.period)

    @property
    def generated(self) -> int:
        return len(self.token_ids) - len(self.attempt.prefix_token_ids)


class RecoveryPolicy:
    """Decides the attempt after each degenerate one, and which result to keep."""

    def __init__(
        self, config: RecoveryConfig = RecoveryConfig(), seed: int = 0, can_resume: bool = True
    ) -> None:
        self.config = config
        self._seed = seed
        self._can_resume = can_resume

    def first(self) -> Attempt:
        temperature = self.config.temperature(0)
        return Attempt(1, "initial", temperature, seed=self._seed if temperature else None)

    def next(self, history: list[AttemptResult]) -> Attempt | None:
        """The next attempt, or None when the last one is clean or attempts are spent."""
        last = history[-1]
        if last.verdict is None or len(history) >= self.config.max_attempts:
            return None
        number = len(history) + 1
        if (
            self.config.strategy == "rewind"
            and self._can_resume
            and last.attempt.mode == "initial"
            and last.verdict.kind not in _NO_REWIND
        ):
            return self._resume(number, last)
        retries = sum(1 for r in history if r.attempt.mode == "retry")
        temperature = self.config.temperature(retries + 1)
        seed = self._seed + number if temperature else None
        return Attempt(number, "retry", temperature, seed=seed)

    def _resume(self, number: int, last: AttemptResult) -> Attempt:
        verdict = last.verdict
        assert verdict is not None
        keep = last.token_ids[: verdict.onset + verdict.period]
        unit = last.token_ids[verdict.onset : verdict.onset + verdict.period]
        banned_sequences: tuple[tuple[int, ...], ...] = ()
        if len(unit) >= 2:
            banned_sequences = (tuple(unit[: self.config.ban_ngram]),)
        return Attempt(
            number,
            "resume",
            last.attempt.temperature,
            prefix_token_ids=tuple(keep),
            banned_first_token_ids=frozenset(unit[:1]),
            banned_sequences=banned_sequences,
            seed=last.attempt.seed,
        )

    @staticmethod
    def best(history: list[AttemptResult]) -> AttemptResult:
        """The clean attempt if there is one, else the one with the longest clean part."""
        for result in reversed(history):
            if result.verdict is None:
                return result
        return max(history, key=lambda r: r.clean_length)

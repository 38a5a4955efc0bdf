"""The guard modes as one policy: what a trip does to the generation, and what the page returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from .recovery import Attempt, AttemptResult

GuardMode = Literal["off", "detect", "abort", "recover"]
"""``off``: nothing is checked; ``detect``: a loop is flagged and generation runs on;
``abort``: generation stops at the loop; ``recover``: a new attempt follows a loop."""
GUARD_MODES: tuple[GuardMode, ...] = get_args(GuardMode)

TripAction = Literal["flag", "abort", "resume", "retry", "give_up"]
"""What the guard did on one trip: flag it and go on, abort and return the text before the
loop, resume after the loop's first copy, retry from scratch, or give up (attempts spent)."""
TRIP_ACTIONS: tuple[TripAction, ...] = get_args(TripAction)

PageOutcome = Literal["none", "flagged", "aborted", "recovered", "failed"]
"""How a page ended: no trip, flagged only, aborted at the loop, recovered by a later clean
attempt, or failed (every attempt looped; the best partial result is returned)."""
PAGE_OUTCOMES: tuple[PageOutcome, ...] = get_args(PageOutcome)


@dataclass(frozen=True)
class ModePolicy:
    """Every decision that depends on the guard mode, so that the transcriber asks instead
    of branching on the mode."""

    mode: GuardMode

    @property
    def watches(self) -> bool:
        """Whether a detector reads the stream at all."""
        return self.mode != "off"

    @property
    def stops(self) -> bool:
        """Whether a trip aborts the engine request at once (everything but ``detect``)."""
        return self.mode in ("abort", "recover")

    @property
    def recovers(self) -> bool:
        """Whether a tripped attempt may be followed by another."""
        return self.mode == "recover"

    def action(self, following: Attempt | None) -> TripAction:
        """The action of a trip, given the attempt the recovery policy plans after it."""
        if self.mode == "detect":
            return "flag"
        if self.mode == "abort":
            return "abort"
        if following is None:
            return "give_up"
        return "resume" if following.mode == "resume" else "retry"

    def returned_ids(self, result: AttemptResult) -> list[int]:
        """The tokens of ``result`` the page returns: all of them when the loop was only
        flagged, else those before the loop's second copy."""
        if self.stops:
            return result.token_ids[: result.clean_length]
        return list(result.token_ids)

    def outcome(self, history: list[AttemptResult], returned: AttemptResult) -> PageOutcome:
        if all(r.verdict is None for r in history):
            return "none"
        if self.mode == "detect":
            return "flagged"
        if self.mode == "abort":
            return "aborted"
        return "recovered" if returned.verdict is None else "failed"

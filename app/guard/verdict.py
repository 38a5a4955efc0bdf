"""What the detector says when it trips."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

LoopKind = Literal[
    "token_run",  # one token repeated
    "ngram_loop",  # a few tokens repeated back to back
    "line_loop",  # whole lines (table rows, list items) repeated back to back
    "block_loop",  # a multi-line block, or one longer than the token tracker follows
    "inline_block",  # a long unit repeated inside one line (HTML/markdown without newlines)
    "fuzzy_loop",  # copies that differ slightly (changing numbers, substituted tokens)
    "block_reemission",  # the same line re-emitted with other text in between
]
LOOP_KINDS: tuple[LoopKind, ...] = (
    "token_run",
    "ngram_loop",
    "line_loop",
    "block_loop",
    "inline_block",
    "fuzzy_loop",
    "block_reemission",
)


@dataclass(frozen=True)
class Verdict:
    """A detected loop. Token indices count generated tokens from 0."""

    kind: LoopKind
    """Shape of the loop."""
    period: int
    """Length of the repeating unit in tokens (mean distance for re-emission)."""
    onset: int
    """Index of the first token of the *first* copy. That copy is usually real content:
    the degenerate part starts at ``onset + period``."""
    repeats: int
    """Copies seen when the detector tripped, the first one included."""
    trip_at: int
    """Number of tokens seen when the detector tripped."""

    @property
    def lag(self) -> int:
        """Tokens generated after the degenerate part began."""
        return max(0, self.trip_at - (self.onset + self.period))

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

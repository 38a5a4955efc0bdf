"""Tiny models for tests: random weights (they babble and loop) and scripted ones (see
tests/scripted.py) whose output a test knows in advance."""

from __future__ import annotations

from pathlib import Path

from tests.scripted import END, cycle, save_random_model, save_scripted_model

__all__ = ["save_looping_model", "save_random_model"]


def save_looping_model(path: Path, tokens: list[str], escape: bool = True) -> Path:
    """Greedy output: ``tokens`` repeated forever. With ``escape``, the runner-up after the
    last token is the end of the answer, so a recovery that bans re-entering the cycle
    ends cleanly."""
    return save_scripted_model(path, cycle(tokens), {tokens[-1]: END} if escape else None)

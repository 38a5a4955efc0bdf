"""Tiny SFT runs that take seconds, shared by the model tests."""

from __future__ import annotations

from training.model.architecture import TINY
from training.model.sft import SftConfig


def tiny_config(tmp_path, **overrides) -> SftConfig:
    """A run of the tiny network that takes seconds: a few steps of two samples."""
    values = dict(
        out=tmp_path / "run",
        steps=4,
        batch_size=2,
        warmup=1,
        eval_every=1000,
        eval_samples=1,
        max_new_tokens=4,
        vocab_size=320,
        size=TINY,
        threads=1,
    )
    return SftConfig(**{**values, **overrides})


# One kind per step in turn from step 0: line, block, table, line, ...
MIXED = {"lines_only_until": 0.0, "mix": "line,block,table"}

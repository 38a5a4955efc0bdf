"""Degeneration-prone traffic: deterministic pages, ground truth that parses, splits apart."""

from __future__ import annotations

from collections import Counter

import pytest

from app.prompt import parse_output
from training.retrain.traffic import ORDINARY_KINDS, PRONE_KINDS, PRONE_SHARE, Traffic


def test_pages_are_the_same_for_the_same_index_and_their_targets_parse():
    a, b = Traffic("train"), Traffic("train")
    for n, kind in enumerate(PRONE_KINDS + ORDINARY_KINDS):
        first, second = a.sample(n, kind), b.sample(n, kind)
        assert first.target == second.target and first.image.tobytes() == second.image.tobytes()
        assert parse_output(first.target) == first.fields


def test_the_splits_share_no_font_and_no_page():
    train, heldout = Traffic("train"), Traffic("heldout")
    assert train.fonts and heldout.fonts and not set(train.fonts) & set(heldout.fonts)
    pages = {train.sample(i, "long_receipt").image.tobytes() for i in range(5)}
    assert not pages & {heldout.sample(i, "long_receipt").image.tobytes() for i in range(5)}


def test_textless_pages_have_an_empty_transcription():
    traffic = Traffic("heldout")
    for kind in ("blank", "ruled", "noise"):
        assert traffic.sample(0, kind).fields.transcription == ""


def test_the_mix_is_mostly_prone_pages_of_every_kind():
    traffic = Traffic("train")
    kinds = Counter(traffic.kind_of(i) for i in range(2000))
    prone = sum(kinds[k] for k in PRONE_KINDS) / 2000
    assert abs(prone - PRONE_SHARE) < 0.05
    assert set(kinds) == set(PRONE_KINDS + ORDINARY_KINDS)


def test_an_unknown_kind_or_split_is_refused():
    with pytest.raises(ValueError):
        Traffic("test")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Traffic("train").sample(0, "poster")

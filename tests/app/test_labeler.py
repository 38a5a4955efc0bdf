"""The offline labeler: outputs cut at EOS, read as streamed, labelled by the live guard."""

from __future__ import annotations

import pytest

from app.guard import LoopDetector
from app.labeler import CHARACTERS, label_ids, label_text, stream_texts, until_eos


@pytest.mark.parametrize(
    ("ids", "eos", "expected"),
    [
        ([1, 2, 3], 3, ([1, 2], True)),
        ([1, 2, 3], [9, 2], ([1], True)),
        ([1, 2, 3], None, ([1, 2, 3], False)),
        ([], 0, ([], False)),
    ],
)
def test_until_eos(ids, eos, expected):
    assert until_eos(ids, eos) == expected


def test_characters_stream_one_character_per_token():
    ids = CHARACTERS.encode("ação")
    assert stream_texts(CHARACTERS, ids) == ["a", "ç", "ã", "o"]


def test_a_label_is_the_live_guard_s_verdict():
    text = "Nota fiscal " + "SAO PAULO " * 30
    ids = CHARACTERS.encode(text)
    detector = LoopDetector()
    live = next(v for i in ids if (v := detector.feed((i,), chr(i))) is not None)
    assert label_text(CHARACTERS, text) == live


def test_an_output_that_runs_to_its_limit_is_degenerate_even_without_a_loop():
    ids = CHARACTERS.encode("abcdefgh")
    assert label_ids(CHARACTERS, ids, max_tokens=8).degenerate
    assert not label_ids(CHARACTERS, ids, max_tokens=9).degenerate
    ended = label_ids(CHARACTERS, [*ids, 0], eos=0, max_tokens=9)
    assert ended.token_ids == ids and not ended.hit_limit and ended.verdict is None

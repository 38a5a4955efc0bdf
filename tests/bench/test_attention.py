"""bench/attention.py maps answer characters to where they are drawn; the map must be right,
or its column and row figures describe the wrong places."""

import json

import numpy as np
import pytest

from bench.attention import MERGED, char_places, line_rows
from training.model.synth import Generator


def drawn_lines(sample):
    fields = sample.fields
    if sample.kind in ("chars", "words", "line"):
        return [fields.text]
    return [fields.header, "", *fields.text.split("\n"), "", fields.footer]


@pytest.mark.parametrize("kind", ["line", "words", "block", "wordblock"])
def test_each_mapped_character_is_the_drawn_one(kind):
    for index in range(6):
        sample = Generator(5).sample(index, kind)
        lines = drawn_lines(sample)
        places = char_places(sample)
        mapped = [(i, p) for i, p in enumerate(places) if p is not None]
        for i, (line, column) in mapped:
            assert lines[line][column] == sample.target[i]
        # every drawn character is mapped once, and nothing of the margin note is
        expected = sum(len(line) for line in lines)
        assert len(mapped) == expected
        assert {p for _, p in mapped} == {
            (n, c) for n, line in enumerate(lines) for c in range(len(line))
        }


def test_escaped_characters_keep_their_places():
    sample = Generator(5).sample(0, "block")
    fields = sample.fields.__class__(header='A "B"', text="x\\y\nz", footer="Página 2")
    sample = sample.__class__(sample.seed, "block", sample.image, fields)
    places = char_places(sample)
    assert json.loads(sample.target)["header"] == 'A "B"'
    text_at = sample.target.index('"text":"') + len('"text":"')
    assert places[text_at] == (2, 0)  # x
    assert places[text_at + 1] == places[text_at + 2] == (2, 1)  # both halves of the escape
    assert places[text_at + 3] == (2, 2)  # y
    assert places[text_at + 4] is places[text_at + 5] is None  # the newline is not drawn
    assert places[text_at + 6] == (3, 0)  # z, the next body line


def test_line_rows_cover_the_ink():
    for index in range(6):
        sample = Generator(5).sample(index, "block")
        page = np.asarray(sample.image.convert("L"), dtype=float)
        rows = line_rows(sample, page.shape[0] // MERGED)  # no resize: scale ~1
        scale = (page.shape[0] // MERGED) * MERGED / page.shape[0]
        centres = [rows[n][0] for n in sorted(rows)]
        assert centres == sorted(centres)
        header, blank = (
            255 - page[int((rows[n][0] + 0.5) * MERGED / scale)].mean() for n in (0, 1)
        )
        assert header > blank + 1  # the header's centre line is darker than the blank line


def test_column_r_on_hits_keeps_only_the_tokens_on_their_line():
    from bench.attention import HeadTrace, KindTrace

    trace = KindTrace(char_index=[0, 1, 2, 3, 4, 5, 6, 7])
    # on its line (hit) the head follows the letters; off it, it looks anywhere
    trace.heads[(3, 1)] = HeadTrace(
        columns=[0.0, 9.0, 2.0, 0.0, 4.0, 1.0, 6.0, 0.0],
        hit=[True, False, True, False, True, False, True, False],
    )
    assert trace.column_r((3, 1), on_line_only=True) == pytest.approx(1.0)
    assert trace.column_r((3, 1)) < 0.5

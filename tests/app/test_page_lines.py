"""The page's text lines, counted from the image: the guard's evidence of what a page holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from app.page_lines import count_text_lines
from training.retrain.traffic import Traffic

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("kind", ["long_receipt", "form_page", "empty_table", "small_print"])
def test_a_page_of_text_lines_is_counted_line_by_line(kind):
    for i in range(3):
        sample = Traffic("heldout").sample(i, kind)
        assert count_text_lines(sample.image) == len(sample.fields.transcription.split("\n"))


@pytest.mark.parametrize("kind", ["blank", "ruled", "noise"])
def test_a_page_without_text_has_no_line(kind):
    counts = [count_text_lines(Traffic("heldout").sample(i, kind).image) for i in range(6)]
    assert sum(counts) <= 4 and counts.count(0) >= 5


def test_the_examples():
    assert count_text_lines(Image.open(EXAMPLES / "line.png")) == 1
    assert count_text_lines(Image.open(EXAMPLES / "receipt.png")) >= 7  # header, items, total


def test_ruled_lines_are_not_text():
    page = Image.new("L", (448, 400), 255)
    draw = ImageDraw.Draw(page)
    for y in range(20, 400, 24):
        draw.line((10, y, 438, y), fill=150)
    draw.text((20, 30), "Nome: Maria da Silva", fill=0)
    assert count_text_lines(page) == 1

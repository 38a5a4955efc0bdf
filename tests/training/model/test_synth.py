"""Synthetic pages: deterministic, parseable targets, the drills, the dataset writer."""

from __future__ import annotations

import json

import pytest

from app.prompt import parse_output
from training.cli import main as training_main
from training.model import synth
from training.model.synth import DRILLS, KINDS, PAGE_WIDTH, Generator, _vocabulary


def test_synth_is_deterministic_and_targets_parse():
    a, b = Generator(3), Generator(3)
    for i, kind in enumerate(KINDS + DRILLS):
        first, second = a.sample(i, kind), b.sample(i, kind)
        assert first.target == second.target
        assert list(first.image.getdata()) == list(second.image.getdata())
        assert parse_output(first.target) == first.fields
    assert Generator(4).sample(0, "line").target != Generator(3).sample(0, "line").target


def test_the_words_drill_draws_random_corpus_words():
    vocabulary = set(_vocabulary())
    texts = [Generator(0).sample(i, "words").fields.text for i in range(200)]
    for text in texts:
        *whole, last = text.split()  # the last word may be cut at the line's length
        assert set(whole) <= vocabulary and any(w.startswith(last) for w in vocabulary)
    assert len(set(texts)) == len(texts)


def test_the_wordblock_drill_is_a_block_page_of_random_corpus_words():
    vocabulary = set(_vocabulary())
    pages = [Generator(0).sample(i, "wordblock") for i in range(100)]
    for page in pages:
        lines = page.fields.text.split("\n")
        assert 2 <= len(lines) <= 5
        header = (page.fields.header, {w.upper() for w in vocabulary})  # drawn in capitals
        for line, known in [header, *((line, vocabulary) for line in lines)]:
            *whole, last = line.split()  # the last word may be cut at 48 characters
            assert set(whole) <= known and any(w.startswith(last) for w in known)
            assert len(line) <= 48
    assert len({page.fields.text for page in pages}) == len(pages)
    # drawn like a prose block: on the block's wider page, not the 448-pixel default
    for kind_pages in (pages, [Generator(0).sample(i, "block") for i in range(100)]):
        assert PAGE_WIDTH < max(page.image.width for page in kind_pages) <= 640


def test_synth_writes_the_kinds_it_is_asked_for_in_order(tmp_path):
    out = tmp_path / "data"
    assert (
        training_main(
            ["synth", "--out", str(out), "--count", "4", "--seed", "3", "--kinds", "line,wordblock"]
        )
        == 0
    )
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [row["kind"] for row in rows] == ["line", "wordblock", "line", "wordblock"]
    for row in rows:
        assert row["target"] == Generator(3).sample(row["index"], row["kind"]).target
        assert (out / row["image"]).is_file()


def test_pages_drawn_without_the_fonts_say_so(monkeypatch, tmp_path):
    from training.model import fonts

    monkeypatch.setattr(fonts, "FONT_ROOT", tmp_path)
    fonts.font_path.cache_clear()
    synth._font.cache_clear()
    try:
        with pytest.warns(UserWarning, match="missing: drawing with PIL's default font"):
            Generator(0).sample(0, "line")
    finally:
        fonts.font_path.cache_clear()
        synth._font.cache_clear()

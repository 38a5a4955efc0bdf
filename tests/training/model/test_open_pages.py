"""Open pages (issue #27): text and glyphs a held-out page shares with no training page."""

from __future__ import annotations

from app.prompt import parse_output
from training.model.open_pages import OpenPages, words
from training.model.synth import Generator


def test_pages_are_deterministic_and_their_targets_parse():
    for kind in ("open_line", "open_block"):
        a, b = OpenPages("train", 3).sample(7, kind), OpenPages("train", 3).sample(7, kind)
        assert a.target == b.target and a.image.tobytes() == b.image.tobytes()
        assert parse_output(a.target) == a.fields
    block = OpenPages("heldout", 1).sample(0, "open_block")
    assert len(block.fields.text.split("\n")) == 5


def test_the_splits_share_no_word_and_no_font():
    train, held = set(words("train")), set(words("heldout"))
    assert len(held) > 1000 and len(train) > 9 * len(held) // 2 and not train & held
    assert not set(OpenPages("train").fonts) & set(OpenPages("heldout").fonts)


def test_the_generator_draws_open_kinds_from_its_split():
    train = Generator(5).sample(0, "open_line")
    held = Generator(5, split="heldout").sample(0, "open_line")
    assert train.target == OpenPages("train", 5).sample(0, "open_line").target
    assert held.target == OpenPages("heldout", 5).sample(0, "open_line").target


def test_a_word_list_file_gives_the_same_pages(tmp_path, monkeypatch):
    """scripts/gpu_prepare carries the list as a file; the pages drawn from it are the same."""
    from training.model import open_pages

    expected = OpenPages("heldout", 2).sample(4, "open_block").target
    listed = tmp_path / "words-pt.txt"
    listed.write_text("\n".join(open_pages.word_list()) + "\n", encoding="utf-8")
    monkeypatch.setenv("OCRGUARD_WORDLIST", str(listed))
    open_pages.words.cache_clear()
    try:
        assert OpenPages("heldout", 2).sample(4, "open_block").target == expected
    finally:
        monkeypatch.delenv("OCRGUARD_WORDLIST")
        open_pages.words.cache_clear()

"""Streamed text never splits a UTF-8 character, and adds up to the full decode."""

from __future__ import annotations

from app.detokenizer import IncrementalDetokenizer
from training.model.architecture import build_tokenizer

TEXT = "Ação, coração e São Paulo — 😊 文字 ok"


def test_deltas_are_whole_characters_and_add_up():
    # A tiny byte-level BPE trained without these characters splits them into bytes.
    tokenizer = build_tokenizer(["abc def"] * 10, vocab_size=300)
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(TEXT)  # multi-byte characters span several tokens
    detok = IncrementalDetokenizer(tokenizer)
    deltas = [detok.push([i]) for i in ids]
    assert all("\ufffd" not in d for d in deltas)
    assert "".join(deltas) + detok.flush() == tokenizer.decode(ids)


def test_prefix_is_not_repeated():
    tokenizer = build_tokenizer(["abc def"] * 10, vocab_size=300)
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    detok = IncrementalDetokenizer(tokenizer, prefix_ids=ids[:10])
    rest = "".join(detok.push([i]) for i in ids[10:])
    assert tokenizer.decode(ids[:10]).rstrip("\ufffd") + rest == TEXT

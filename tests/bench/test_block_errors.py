"""bench/block_errors.py's line accounting, on hand-made records with a known answer."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("block_errors", ROOT / "bench/block_errors.py")
block_errors = importlib.util.module_from_spec(spec)
spec.loader.exec_module(block_errors)


def _corpus_run() -> list[str]:
    """Four consecutive corpus lines (as blocks cut them) that occur once each in the corpus."""
    cut = block_errors._corpus_lines()
    for i in range(len(cut) - 3):
        run = cut[i : i + 4]
        if all(cut.count(line) == 1 for line in run):
            return run
    raise AssertionError("no run of four distinct corpus lines")


def _record(truth: list[str], output: list[str]) -> dict:
    return {
        "reference_fields": {"text": "\n".join(truth)},
        "hypothesis_fields": {"text": "\n".join(output)},
    }


def test_recalled_lines_are_split_by_where_they_come_from() -> None:
    a, b, c, d = _corpus_run()
    far = block_errors._corpus_lines()[-1]
    records = [
        # a exact; c is this page's third line; d follows c in the corpus (the model's line n-1)
        _record([a, b, c, b], [a, c, d, "not a line of the corpus"]),
        # far (the corpus's last line) is on neither page, starts unlike b and a, and no
        # corpus line follows it: both times it comes from elsewhere
        _record([b, a], [far, far]),
    ]
    assert block_errors.body_lines(records) == {
        "exact": 1,
        "recalled": 4,
        "missing": 0,
        "other": 1,
    }
    assert block_errors.recalled_lines(records) == {
        "this page": 1,
        "next in corpus": 1,
        "same start": 0,
        "elsewhere": 2,
    }


def test_a_line_that_follows_the_true_line_before_counts_as_next_in_corpus() -> None:
    a, b, c, _ = _corpus_run()
    # the model misread line 0, then wrote the corpus line after the *true* line 0
    counts = block_errors.recalled_lines([_record([a, c], ["garbled", b])])
    assert counts == {"this page": 0, "next in corpus": 1, "same start": 0, "elsewhere": 0}


def test_a_recalled_line_that_opens_like_the_true_one_counts_as_same_start() -> None:
    cut = sorted(set(block_errors._corpus_lines()))
    start = block_errors.SAME_START
    true, recalled = next((a, b) for a, b in zip(cut, cut[1:]) if a[:start] == b[:start])
    counts = block_errors.recalled_lines([_record([true], [recalled])])
    assert counts == {"this page": 0, "next in corpus": 0, "same start": 1, "elsewhere": 0}

"""What kind of unit repeats: the class decides how many copies a trip needs."""

from __future__ import annotations

import pytest

from app.guard import DEFAULT_CONFIG
from app.guard.structure import classify_unit, word_count


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("---- ", "structural"),
        ("| 0,00 | 12 |\n", "numeric"),
        ("the cat sat on the mat. ", "content"),
        # a receipt's item block (quantity and amount) and its label/amount pair
        ("PURITY SOJA 1LT (Código: 21468)\nQtde.:1 UN: UN Vl. Unit.: 4,99\n", "record"),
        ("Vl. Total\n4,99\n", "record"),
        ("9\nVl. Total\n4,9", "record"),  # a token period's copy starts anywhere
        ("| 7891025124603 | IOGURTE DANONE | 1 | UN | 5,99 |\n", "record"),  # a table row
        ('{"time": "00:35", "station": "Hauptbahnhof"}\n', "record"),
        ("| M   ", "structural"),  # cells of a row: a flag per column
        # a payslip line with an amount but no quantity, long: content (a loop of it trips)
        ("- Lohnsteuer, Ird.: 0.00 / Rentensteuer, Ird.: No\nGesetzliche Abzüge:\n", "content"),
        ("::::::::::::\n", "content"),
        # a grounded caption: a model's special tokens are markup, their pipes no cells
        (
            "A trash can <|mt_start|><|mt_0124|><|mt_0283|><|mt_end|> with a lid is visible. ",
            "content",
        ),
        ("<|im_start|>user\nHello<|im_end|>\n", "content"),
        ("| a <b>bold</b> cell | 2 |\n", "record"),  # a table row keeps its cells
    ],
)
def test_classify_unit(unit, expected):
    assert classify_unit(unit) == expected


def test_records_need_more_copies_than_content():
    assert DEFAULT_CONFIG.copies_needed(66, "record") == DEFAULT_CONFIG.record_min_copies
    assert DEFAULT_CONFIG.copies_needed(66, "content") == DEFAULT_CONFIG.min_copies


def test_word_count_reads_cjk_without_spaces():
    assert word_count("one two three") == 3
    assert word_count("正是在这样的大背景下西藏的文学家们") == 8

"""The oracle of bench/guard_own_outputs.py: repetition beyond what the page holds."""

from __future__ import annotations

import pytest

from bench.guard_own_outputs import oracle

ITEMS = "1 UN CAFE EXPRESSO 5,50\n" * 12
SENTENCE = "O contrato entra em vigor na data de sua assinatura pelas partes.\n"


@pytest.mark.parametrize(
    ("output", "reference", "hit_limit", "expected"),
    [
        (ITEMS, ITEMS, False, "clean"),  # the page's own repetition, written as often
        (ITEMS + "1 UN CAFE EXPRESSO 5,50\n" * 3, ITEMS, False, "loop"),
        (ITEMS + "1 UN CAFE EXPRESSO 5,50\n", ITEMS, False, "copy too many"),
        (
            SENTENCE + "Outra linha.\n" + SENTENCE,
            SENTENCE + "Outra linha.\n",
            False,
            "copy too many",
        ),
        (SENTENCE * 3, SENTENCE, False, "loop"),
        ("Texto inventado que a página não tem.", "Outra coisa.", False, "clean"),
        ("SILVEIRA\n" + "." * 47, "", False, "clean"),  # a leader's length: not yet a loop
        ("SILVEIRA\n" + ". " * 60, "", False, "loop"),
        (
            "| a |  |  |\n" + "|  |  |  |\n" * 9,
            "| a |  |  |\n" + "|  |  |  |\n" * 9,
            False,
            "clean",
        ),
        ("Um texto que parou no meio", "Um texto que parou no meio.", True, "loop"),
    ],
)
def test_the_oracle_counts_repetition_beyond_the_page(output, reference, hit_limit, expected):
    assert oracle(output, reference, hit_limit) == expected

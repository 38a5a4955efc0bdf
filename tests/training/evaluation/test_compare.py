"""The release rule: a candidate is better only with less prone degeneration and no loss."""

from __future__ import annotations

import pytest

from training.evaluation.compare import ReleaseRule, compare


def kinds(cer: float, json_rate: float = 1.0) -> dict:
    return {"line": {"pages": 10, "cer": cer, "valid_json_rate": json_rate, "degeneration_rate": 0}}


def prone(rate: float, json_rate: float = 1.0) -> dict:
    page = {"pages": 10, "degeneration_rate": rate, "valid_json_rate": json_rate}
    return {"greedy": {"ruled": page}}


def results(serving: tuple, candidate: tuple, prone_json: tuple = (1.0, 1.0)) -> dict:
    return {
        "models": {"s": kinds(*serving[1:]), "c": kinds(*candidate[1:])},
        "prone": {"s": prone(serving[0], prone_json[0]), "c": prone(candidate[0], prone_json[1])},
    }


@pytest.mark.parametrize(
    ("serving", "candidate", "better", "reason"),
    [
        ((0.2, 0.05), (0.02, 0.052), True, None),
        ((0.2, 0.05), (0.2, 0.05), False, "reduced by 0.0%"),
        ((0.2, 0.05), (0.02, 0.06), False, "line CER +0.010"),
        ((0.2, 0.05, 1.0), (0.02, 0.05, 0.9), False, "line valid JSON -10.0%"),
        ((0.0, 0.05), (0.1, 0.05), False, "degenerates where the serving model did not"),
        ((0.0, 0.05), (0.0, 0.05), True, None),
    ],
)
def test_the_rule(serving, candidate, better, reason):
    comparison = compare(results(serving, candidate), "s", "c", ReleaseRule())
    assert comparison.better is better
    if reason:
        assert any(reason in r for r in comparison.reasons), comparison.reasons


def test_a_demanded_reduction_must_be_beaten():
    rule = ReleaseRule(min_reduction=0.876)
    assert not compare(results((0.2, 0.05), (0.03, 0.05)), "s", "c", rule).better  # -85 %
    assert compare(results((0.2, 0.05), (0.02, 0.05)), "s", "c", rule).better  # -90 %


def test_valid_json_on_the_prone_pages_must_not_fall():
    fewer = compare(results((0.2, 0.05), (0.02, 0.05), (0.8, 0.7)), "s", "c", ReleaseRule())
    assert not fewer.better
    assert fewer.reasons == ["prone pages' valid JSON -10.0%"]
    more = compare(results((0.2, 0.05), (0.02, 0.05), (0.7, 0.9)), "s", "c", ReleaseRule())
    assert more.better and more.json_change["prone (greedy, pooled)"] == 0.2

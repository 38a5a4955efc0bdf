"""The mode policy: one table of what each guard mode does on a trip."""

from __future__ import annotations

import pytest

from app.guard import Verdict
from app.guard.policy import ModePolicy
from app.guard.recovery import Attempt, AttemptResult

LOOP = Verdict("ngram_loop", period=2, onset=1, repeats=3, trip_at=7)


def _result(verdict: Verdict | None, tokens=(9, 5, 6, 5, 6, 5, 6)) -> AttemptResult:
    result = AttemptResult(Attempt(1, "initial", 0.0), token_ids=list(tokens))
    result.verdict = verdict
    return result


RESUME = Attempt(2, "resume", 0.0, prefix_token_ids=(9, 5, 6))
RETRY = Attempt(2, "retry", 0.4)


@pytest.mark.parametrize(
    ("mode", "watches", "stops", "recovers"),
    [
        ("off", False, False, False),
        ("detect", True, False, False),
        ("abort", True, True, False),
        ("recover", True, True, True),
    ],
)
def test_what_each_mode_does(mode, watches, stops, recovers):
    policy = ModePolicy(mode)
    assert (policy.watches, policy.stops, policy.recovers) == (watches, stops, recovers)


@pytest.mark.parametrize(
    ("mode", "following", "action"),
    [
        ("detect", None, "flag"),
        ("abort", None, "abort"),
        ("recover", RESUME, "resume"),
        ("recover", RETRY, "retry"),
        ("recover", None, "give_up"),
    ],
)
def test_the_action_of_a_trip(mode, following, action):
    assert ModePolicy(mode).action(following) == action


def test_a_flagged_page_returns_everything_a_stopped_one_only_the_text_before_the_loop():
    tripped = _result(LOOP)
    assert ModePolicy("detect").returned_ids(tripped) == tripped.token_ids
    assert ModePolicy("abort").returned_ids(tripped) == [9, 5, 6]  # onset + one period


@pytest.mark.parametrize(
    ("mode", "history", "returned", "outcome"),
    [
        ("recover", [None], None, "none"),
        ("detect", [LOOP], LOOP, "flagged"),
        ("abort", [LOOP], LOOP, "aborted"),
        ("recover", [LOOP, None], None, "recovered"),
        ("recover", [LOOP, LOOP], LOOP, "failed"),
    ],
)
def test_the_outcome_of_a_page(mode, history, returned, outcome):
    results = [_result(v) for v in history]
    assert ModePolicy(mode).outcome(results, _result(returned)) == outcome

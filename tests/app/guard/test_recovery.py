"""The recovery policy, alone and driven through the transcriber by a scripted engine."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from PIL import Image

from app.engines.base import GenerationRequest, TokenDelta
from app.guard import DEFAULT_CONFIG, Verdict
from app.guard.recovery import AttemptResult, RecoveryConfig, RecoveryPolicy
from app.images import Page
from app.prompt import PagePrompt
from app.transcriber import PageJob, PageRun, Transcriber

LOOP = Verdict("ngram_loop", period=3, onset=2, repeats=9, trip_at=29)


def result(attempt, tokens, verdict=None):
    return AttemptResult(attempt, token_ids=list(tokens), verdict=verdict)


def test_rewind_keeps_one_copy_and_blocks_the_loop():
    policy = RecoveryPolicy(RecoveryConfig(strategy="rewind", ban_ngram=2))
    first = policy.first()
    tokens = [1, 2] + [7, 8, 9] * 9
    resume = policy.next([result(first, tokens, LOOP)])
    assert resume.mode == "resume"
    assert resume.prefix_token_ids == (1, 2, 7, 8, 9)  # onset + one period
    assert resume.banned_first_token_ids == {7}  # the token that starts the next copy
    assert resume.banned_sequences == ((7, 8),)
    assert resume.temperature == first.temperature


def test_ladder_after_a_failed_resume_then_stop():
    config = RecoveryConfig(strategy="rewind", max_attempts=4, temperatures=(0.0, 0.3, 0.7))
    policy = RecoveryPolicy(config, seed=5)
    history = [result(policy.first(), [1] * 40, LOOP)]
    history.append(result(policy.next(history), [1] * 40, LOOP))
    third = policy.next(history)
    assert (third.mode, third.temperature, third.prefix_token_ids) == ("retry", 0.3, ())
    assert third.seed is not None
    history.append(result(third, [1] * 40, LOOP))
    fourth = policy.next(history)
    assert (fourth.mode, fourth.temperature) == ("retry", 0.7)
    history.append(result(fourth, [1] * 40, LOOP))
    assert policy.next(history) is None  # attempts spent


@pytest.mark.parametrize("kind", ["fuzzy_loop", "block_reemission"])
def test_no_rewind_for_loops_without_a_clean_copy(kind):
    policy = RecoveryPolicy()
    verdict = Verdict(kind, period=10, onset=0, repeats=8, trip_at=90)
    assert policy.next([result(policy.first(), [3] * 90, verdict)]).mode == "retry"


def test_retry_strategy_never_rewinds():
    policy = RecoveryPolicy()  # retry is the default strategy
    assert policy.next([result(policy.first(), [1] * 40, LOOP)]).mode == "retry"


def test_clean_attempt_ends_recovery_and_is_the_best():
    policy = RecoveryPolicy()
    clean = result(policy.first(), [1, 2, 3])
    assert policy.next([clean]) is None
    partial = result(policy.first(), [1, 2] + [7, 8, 9] * 9, LOOP)
    longer = result(policy.first(), list(range(20)) + [5] * 30, Verdict("token_run", 1, 20, 19, 50))
    assert RecoveryPolicy.best([partial, longer]) is longer  # longest clean part
    assert RecoveryPolicy.best([partial, clean]) is clean


class ScriptedEngine:
    """Stand-in engine for policy tests: plays back scripted token streams, one per call,
    and records each request (the real engine is tested over HTTP in tests/app)."""

    model_id, revision, max_concurrency = "scripted", "0", 1

    def __init__(self, scripts: list[list[int]]) -> None:
        self.scripts = scripts
        self.requests: list[GenerationRequest] = []
        self.aborted: list[str] = []

    @property
    def ready(self) -> bool:
        return True

    def decode(self, token_ids) -> str:
        return "".join(f" w{t}" for t in token_ids)

    can_resume = True

    async def start(self) -> None:
        pass

    def metrics(self) -> bytes:
        return b""

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)

    async def close(self) -> None:
        pass

    async def generate(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        self.requests.append(request)
        script = self.scripts[len(self.requests) - 1]
        for n, token in enumerate(script):
            if token in request.banned_first_token_ids and n == 0:
                raise AssertionError("banned token generated")
            yield TokenDelta((token,), f" w{token}")
        yield TokenDelta((), "", finish_reason="stop")


async def run_page(engine, mode="recover", config: RecoveryConfig | None = None):
    transcriber = Transcriber(engine, DEFAULT_CONFIG, config or RecoveryConfig())
    run = PageRun([])
    events = [
        e
        async for e in transcriber.run(
            PageJob("req", Page(1, Image.new("RGB", (8, 8))), PagePrompt("x"), 200, mode), run
        )
    ]
    return run, events


async def test_transcriber_rewinds_then_succeeds():
    loop = [1, 2] + [7, 8, 9] * 20
    engine = ScriptedEngine([loop, [10, 11]])
    run, events = await run_page(engine, config=RecoveryConfig(strategy="rewind"))
    first, second = engine.requests
    assert engine.aborted == [first.request_id]  # aborted at the trip
    assert second.prefix_token_ids == (1, 2, 7, 8, 9)
    assert second.banned_first_token_ids == {7}
    assert second.sampling.max_tokens == 200 - 5
    assert run.result.guard.outcome == "recovered"
    assert engine.decode([1, 2, 7, 8, 9, 10, 11]) == run.result.raw_text
    generated = len(loop[: run.history[0].verdict.trip_at])
    assert run.result.guard.tokens_generated == generated + 2


async def test_transcriber_climbs_the_ladder_and_flags_the_best_partial():
    loop = [1, 2] + [7, 8, 9] * 20
    engine = ScriptedEngine([loop, [5] * 40, [6] * 40])
    config = RecoveryConfig(strategy="rewind", max_attempts=3, temperatures=(0.0, 0.5))
    run, _ = await run_page(engine, config=config)
    assert [r.sampling.temperature for r in engine.requests] == [0.0, 0.0, 0.5]
    assert [r.attempt.mode for r in run.history] == ["initial", "resume", "retry"]
    assert run.result.guard.outcome == "failed"
    assert len(run.result.guard.attempts) == 3


async def test_abort_mode_stops_after_the_first_trip():
    engine = ScriptedEngine([[1, 2] + [7, 8, 9] * 20])
    run, events = await run_page(engine, mode="abort")
    assert len(engine.requests) == 1
    assert run.result.guard.outcome == "aborted"
    assert run.result.raw_text == engine.decode([1, 2, 7, 8, 9])

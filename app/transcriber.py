"""Runs one page through the engine with the guard watching every token, and recovers."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from .engines.base import Engine, EngineError, GenerationRequest, SamplingOptions
from .errors import from_engine
from .guard import GuardConfig, LoopDetector, Verdict
from .guard.policy import GuardMode, ModePolicy, TripAction
from .guard.recovery import Attempt, AttemptResult, RecoveryConfig, RecoveryPolicy
from .images import Page
from .prompt import PagePrompt, parse_output
from .results import (
    AttemptReport,
    DeltaEvent,
    Event,
    GuardEvent,
    GuardReport,
    PageEvent,
    PageResult,
)

logger = logging.getLogger(__name__)


@dataclass
class PageJob:
    request_id: str
    page: Page
    prompt: PagePrompt
    max_tokens: int
    mode: GuardMode
    seed: int = 0
    temperature: float | None = None
    """The first attempt's temperature (None: the recovery ladder's first rung)."""
    top_p: float = 1.0


@dataclass
class PageRun:
    """What the caller needs besides the events: the history for failure records, and
    the tokens generated so far (counted even when the page never finishes)."""

    history: list[AttemptResult] = field(default_factory=list)
    trips: list[tuple[AttemptResult, TripAction]] = field(default_factory=list)
    """Every tripped attempt with what the guard did about it."""
    generated: int = 0
    first_token_at: float | None = None
    result: PageResult | None = None


class Transcriber:
    def __init__(self, engine: Engine, guard: GuardConfig, recovery: RecoveryConfig) -> None:
        self.engine = engine
        self.guard = guard
        self.recovery = recovery

    async def run(self, job: PageJob, run: PageRun) -> AsyncIterator[Event]:
        """Yield the page's events, ending with its ``PageEvent``; fills ``run``."""
        policy = ModePolicy(job.mode)
        ladder = (
            self.recovery if job.temperature is None else self.recovery.starting_at(job.temperature)
        )
        recovery = RecoveryPolicy(ladder, seed=job.seed, can_resume=self.engine.can_resume)
        attempt: Attempt | None = recovery.first()
        history = run.history
        while attempt is not None:
            result = AttemptResult(attempt, token_ids=list(attempt.prefix_token_ids))
            async for event in self._attempt(job, result, run, policy):
                yield event
            history.append(result)
            if result.verdict is None or not policy.stops:
                break
            attempt = recovery.next(history) if policy.recovers else None
            action = policy.action(attempt)
            run.trips.append((result, action))
            if action == "abort":
                keep = len(self.engine.decode(policy.returned_ids(result)))
            elif attempt is not None and attempt.prefix_token_ids:
                keep = len(self.engine.decode(attempt.prefix_token_ids))
            else:
                keep = 0
            yield GuardEvent(
                job.page.number, result.attempt.number, result.verdict.as_dict(), action, keep
            )
        returned = recovery.best(history) if policy.recovers else history[-1]
        run.result = self._page_result(job, policy, history, returned)
        ids = policy.returned_ids(returned)
        prefix = len(returned.attempt.prefix_token_ids)
        logprobs = [None] * min(prefix, len(ids)) + returned.logprobs[: max(0, len(ids) - prefix)]
        yield PageEvent(run.result, ids, logprobs, returned.prompt_tokens)

    async def _attempt(
        self, job: PageJob, result: AttemptResult, run: PageRun, policy: ModePolicy
    ) -> AsyncIterator[Event]:
        attempt = result.attempt
        detector = LoopDetector(self.guard, job.page.text_lines) if policy.watches else None
        if detector is not None and attempt.prefix_token_ids:
            detector.feed(attempt.prefix_token_ids, self.engine.decode(attempt.prefix_token_ids))
        request = GenerationRequest(
            request_id=f"{job.request_id}-p{job.page.number}-a{attempt.number}",
            image=job.page.image,
            prompt=job.prompt,
            sampling=SamplingOptions(
                max_tokens=max(1, job.max_tokens - len(attempt.prefix_token_ids)),
                temperature=attempt.temperature,
                top_p=job.top_p,
                seed=attempt.seed,
            ),
            prefix_token_ids=attempt.prefix_token_ids,
            banned_first_token_ids=attempt.banned_first_token_ids,
            banned_sequences=attempt.banned_sequences,
        )
        stream = self.engine.generate(request)
        try:
            async for delta in stream:
                if delta.token_ids:
                    if run.first_token_at is None:
                        run.first_token_at = time.monotonic()
                    result.token_ids.extend(delta.token_ids)
                    run.generated += len(delta.token_ids)
                    given = (
                        delta.logprobs
                        if delta.logprobs and len(delta.logprobs) == len(delta.token_ids)
                        else None
                    )
                    result.logprobs.extend(given or [None] * len(delta.token_ids))
                if delta.finish_reason is not None:
                    result.finish_reason = delta.finish_reason
                if delta.prompt_tokens is not None:
                    result.prompt_tokens = delta.prompt_tokens
                verdict = None
                if detector is not None and result.verdict is None and delta.token_ids:
                    verdict = detector.feed(delta.token_ids, delta.text)
                if delta.text:
                    ids, lps = delta.token_ids, tuple(result.logprobs[-len(delta.token_ids) :])
                    yield DeltaEvent(
                        job.page.number, attempt.number, delta.text, ids, lps if ids else ()
                    )
                if verdict is None:
                    continue
                flagged = self._trip(job, result, run, policy, verdict)
                if flagged is not None:
                    yield flagged
                    continue
                # Free the slot now rather than when the generator is collected.
                await self.engine.abort(request.request_id)
                break
            else:
                # The model ended the page: its last line is a finished line (three copies
                # of a line, the last with no line break after it, are three copies).
                if (
                    detector is not None
                    and result.verdict is None
                    and result.finish_reason == "stop"
                ):
                    verdict = detector.finish()
                    if verdict is not None:
                        flagged = self._trip(job, result, run, policy, verdict)
                        if flagged is not None:
                            yield flagged
        except EngineError as exc:
            raise from_engine(exc.kind, f"the model engine: {exc}", exc.status) from exc
        finally:
            await stream.aclose()

    def _trip(
        self,
        job: PageJob,
        result: AttemptResult,
        run: PageRun,
        policy: ModePolicy,
        verdict: Verdict,
    ) -> GuardEvent | None:
        """Record a trip on the attempt: the event to send now where the guard only flags,
        None where it stops the attempt (the caller aborts the engine request)."""
        result.verdict = verdict
        logger.info(
            "request %s page %d attempt %d: guard tripped (%s, period %d, lag %d)",
            job.request_id,
            job.page.number,
            result.attempt.number,
            verdict.kind,
            verdict.period,
            verdict.lag,
        )
        if policy.stops:
            result.finish_reason = "abort"
            return None
        run.trips.append((result, "flag"))
        return GuardEvent(job.page.number, result.attempt.number, verdict.as_dict(), "flag", None)

    def _guard_event(
        self, job: PageJob, result: AttemptResult, action: TripAction, keep: int | None
    ) -> GuardEvent:
        verdict = result.verdict
        assert verdict is not None
        ids = result.token_ids
        return GuardEvent(
            job.page.number,
            result.attempt.number,
            verdict.as_dict(),
            action,
            keep,
            onset_chars=len(self.engine.decode(ids[: verdict.onset])),
            repeat_chars=len(self.engine.decode(ids[: verdict.onset + verdict.period])),
        )

    def _page_result(
        self,
        job: PageJob,
        policy: ModePolicy,
        history: list[AttemptResult],
        returned: AttemptResult,
    ) -> PageResult:
        report = GuardReport(mode=job.mode, version=self.guard.version)
        for r in history:
            report.attempts.append(
                AttemptReport(
                    number=r.attempt.number,
                    mode=r.attempt.mode,
                    temperature=r.attempt.temperature,
                    prefix_tokens=len(r.attempt.prefix_token_ids),
                    tokens_generated=r.generated,
                    finish_reason=r.finish_reason,
                    verdict=r.verdict.as_dict() if r.verdict else None,
                )
            )
            report.tokens_generated += r.generated
            if r.verdict is not None and policy.stops:
                report.tokens_saved += max(0, job.max_tokens - len(r.token_ids))
        first_trip = next((r.verdict for r in history if r.verdict is not None), None)
        if first_trip is not None:
            report.tripped = True
            report.kind, report.period = first_trip.kind, first_trip.period
            report.onset, report.lag = first_trip.onset, first_trip.lag
        report.outcome = policy.outcome(history, returned)
        raw = self.engine.decode(policy.returned_ids(returned))
        fields = parse_output(raw)
        return PageResult(
            page=job.page.number,
            header=fields.header if fields else None,
            margin=fields.margin if fields else None,
            footer=fields.footer if fields else None,
            text=fields.text if fields else None,
            raw_text=raw,
            valid_json=fields is not None,
            finish_reason=returned.finish_reason,
            guard=report,
        )

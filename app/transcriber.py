"""Runs one page through the engine with the guard watching every token, and recovers."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from .engines.base import Engine, EngineError, GenerationRequest, SamplingOptions
from .errors import EngineFailed
from .guard import GuardConfig, LoopDetector
from .guard.recovery import Attempt, AttemptResult, RecoveryConfig, RecoveryPolicy
from .images import Page
from .prompt import parse_output
from .results import (
    AttemptReport,
    DeltaEvent,
    Event,
    GuardEvent,
    GuardMode,
    GuardReport,
    PageEvent,
    PageResult,
)

logger = logging.getLogger(__name__)


@dataclass
class PageJob:
    request_id: str
    page: Page
    prompt: str
    max_tokens: int
    mode: GuardMode
    seed: int = 0


@dataclass
class PageRun:
    """What the caller needs after the events: the history for failure records."""

    history: list[AttemptResult]
    first_token_at: float | None = None
    result: PageResult | None = None


class Transcriber:
    def __init__(self, engine: Engine, guard: GuardConfig, recovery: RecoveryConfig) -> None:
        self.engine = engine
        self.guard = guard
        self.recovery = recovery

    async def run(self, job: PageJob, run: PageRun) -> AsyncIterator[Event]:
        """Yield the page's events, ending with its ``PageEvent``; fills ``run``."""
        policy = RecoveryPolicy(self.recovery, seed=job.seed)
        attempt: Attempt | None = policy.first()
        history = run.history
        while attempt is not None:
            result = AttemptResult(attempt, token_ids=list(attempt.prefix_token_ids))
            async for event in self._attempt(job, result, run):
                yield event
            history.append(result)
            if result.verdict is None or job.mode in ("off", "detect", "abort"):
                break
            attempt = policy.next(history)
            if attempt is not None:
                keep = (
                    len(self.engine.decode(attempt.prefix_token_ids))
                    if attempt.prefix_token_ids
                    else 0
                )
                yield GuardEvent(
                    job.page.number,
                    result.attempt.number,
                    result.verdict.as_dict(),
                    attempt.mode,
                    keep,
                )
        best = policy.best(history) if job.mode == "recover" else history[-1]
        run.result = self._page_result(job, history, best)
        yield PageEvent(run.result)

    async def _attempt(
        self, job: PageJob, result: AttemptResult, run: PageRun
    ) -> AsyncIterator[Event]:
        attempt = result.attempt
        detector = LoopDetector(self.guard) if job.mode != "off" else None
        if detector is not None and attempt.prefix_token_ids:
            detector.feed(attempt.prefix_token_ids, self.engine.decode(attempt.prefix_token_ids))
        request = GenerationRequest(
            request_id=f"{job.request_id}-p{job.page.number}-a{attempt.number}",
            image=job.page.image,
            prompt=job.prompt,
            sampling=SamplingOptions(
                max_tokens=max(1, job.max_tokens - len(attempt.prefix_token_ids)),
                temperature=attempt.temperature,
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
                if delta.finish_reason is not None:
                    result.finish_reason = delta.finish_reason
                verdict = None
                if detector is not None and result.verdict is None and delta.token_ids:
                    verdict = detector.feed(delta.token_ids, delta.text)
                if delta.text:
                    yield DeltaEvent(job.page.number, attempt.number, delta.text)
                if verdict is None:
                    continue
                result.verdict = verdict
                logger.info(
                    "request %s page %d attempt %d: guard tripped (%s, period %d, lag %d)",
                    job.request_id,
                    job.page.number,
                    attempt.number,
                    verdict.kind,
                    verdict.period,
                    verdict.lag,
                )
                if job.mode == "detect":
                    yield GuardEvent(
                        job.page.number, attempt.number, verdict.as_dict(), "flagged", None
                    )
                    continue
                result.finish_reason = "abort"
                # Free the slot now rather than when the generator is collected.
                await self.engine.abort(request.request_id)
                if job.mode == "abort":
                    keep = len(self.engine.decode(result.token_ids[: result.clean_length]))
                    yield GuardEvent(
                        job.page.number, attempt.number, verdict.as_dict(), "aborted", keep
                    )
                break
        except EngineError as exc:
            raise EngineFailed(f"the model engine failed: {exc}") from exc
        finally:
            await stream.aclose()

    def _page_result(
        self, job: PageJob, history: list[AttemptResult], best: AttemptResult
    ) -> PageResult:
        report = GuardReport(mode=job.mode, version=self.guard.version)
        first_trip = next((r for r in history if r.verdict is not None), None)
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
            if r.verdict is not None and job.mode != "detect":
                report.tokens_saved += max(0, job.max_tokens - len(r.token_ids))
        if first_trip is not None and first_trip.verdict is not None:
            v = first_trip.verdict
            report.tripped = True
            report.kind, report.period, report.onset, report.lag = v.kind, v.period, v.onset, v.lag
            if job.mode == "detect":
                report.action = "flagged"
            elif job.mode == "abort":
                report.action = "aborted"
            else:
                report.action = "recovered" if best.verdict is None else "failed"
        ids = best.token_ids if job.mode == "detect" else best.token_ids[: best.clean_length]
        raw = self.engine.decode(ids)
        fields = parse_output(raw)
        return PageResult(
            page=job.page.number,
            header=fields.header if fields else None,
            margin=fields.margin if fields else None,
            footer=fields.footer if fields else None,
            text=fields.text if fields else None,
            raw_text=raw,
            valid_json=fields is not None,
            finish_reason=best.finish_reason,
            guard=report,
        )

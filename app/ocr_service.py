"""Serves OCR requests: admission, pages in order, metrics and failure records."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any

from .admission import Admission, Reservation
from .engines.base import Engine
from .failure_log import FailureLog
from .failure_record import FailureRecord
from .guard import GuardConfig
from .guard.policy import GuardMode
from .guard.recovery import RecoveryConfig
from .images import Page, image_sha256
from .logs import request_id_var
from .metrics import Metrics
from .prompt import PagePrompt, prompt_version
from .results import Event, PageEvent, PageResult
from .transcriber import PageJob, PageRun, Transcriber

logger = logging.getLogger(__name__)


@dataclass
class OcrRequest:
    pages: list[Page]
    mode: GuardMode = "recover"
    max_tokens: int = 1024
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    seed: int = 0
    prompt: PagePrompt = field(default_factory=PagePrompt)
    temperature: float | None = None
    """The first attempt's temperature (None: the recovery ladder's)."""
    top_p: float = 1.0


@dataclass
class ResultEvent:
    """The last event of a request: the whole response."""

    body: dict[str, Any]


class OcrService:
    """Admits requests, runs their pages through the transcriber in order, counts them, and
    logs every trip in the background (the answer never waits for Redis or PNG encoding)."""

    def __init__(
        self,
        engine: Engine,
        failure_log: FailureLog,
        metrics: Metrics,
        *,
        guard: GuardConfig,
        recovery: RecoveryConfig,
        max_queue: int,
    ) -> None:
        self.engine = engine
        self.failure_log = failure_log
        self.metrics = metrics
        self.guard = guard
        self.transcriber = Transcriber(engine, guard, recovery)
        self.model = engine.model_id
        self.started = int(time.time())
        inflight = metrics.inflight.labels(self.model)
        self.admission = Admission(engine.max_concurrency + max_queue, inflight.set)
        self._background: set[asyncio.Task[None]] = set()

    @property
    def draining(self) -> bool:
        return self.admission.draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self.admission.draining = value

    @property
    def inflight(self) -> int:
        return self.admission.inflight

    def reserve(self) -> Reservation:
        """Hold a place for one request, or refuse it with 503 when full or draining."""
        return self.admission.reserve()

    async def wait_idle(self, timeout: float) -> bool:
        """Whether every request and every background failure log write ended in time."""
        deadline = time.monotonic() + timeout
        if not await self.admission.wait_idle(timeout):
            return False
        if self._background:
            left = max(0.0, deadline - time.monotonic())
            _, pending = await asyncio.wait(set(self._background), timeout=left)
            return not pending
        return True

    async def transcribe(self, request: OcrRequest) -> AsyncIterator[Event | ResultEvent]:
        """Events of every page in order, then a ``ResultEvent``. Run it under a reservation."""
        request_id_var.set(request.request_id)
        started = time.monotonic()
        outcome = "server_error"
        try:
            async for event in self._pages(request, started):
                if isinstance(event, ResultEvent):
                    outcome = "ok"
                yield event
        except (asyncio.CancelledError, GeneratorExit):
            if outcome != "ok":
                outcome = "cancelled"  # the client went away; the engine request was aborted
            raise
        finally:
            self.metrics.requests.labels(self.model, outcome).inc()

    async def _pages(
        self, request: OcrRequest, started: float
    ) -> AsyncIterator[Event | ResultEvent]:
        results: list[PageResult] = []
        first_token_at = None
        for page in request.pages:
            job = PageJob(
                request.request_id,
                page,
                request.prompt,
                request.max_tokens,
                request.mode,
                request.seed,
                request.temperature,
                request.top_p,
            )
            run = PageRun()
            try:
                async for event in self.transcriber.run(job, run):
                    if isinstance(event, PageEvent):
                        self._account(request, job, run, event.result)
                        results.append(event.result)
                    yield event
            finally:
                # Counted whatever the outcome: a cancelled page burned its tokens too.
                self.metrics.generated_tokens.labels(self.model).inc(run.generated)
            if first_token_at is None and run.first_token_at is not None:
                first_token_at = run.first_token_at
                self.metrics.ttft.labels(self.model).observe(first_token_at - started)
        elapsed = time.monotonic() - started
        self.metrics.duration.labels(self.model).observe(elapsed)
        yield ResultEvent(self._body(request, results, started, first_token_at, elapsed))

    def _account(self, request: OcrRequest, job: PageJob, run: PageRun, result: PageResult) -> None:
        m, model, report = self.metrics, self.model, result.guard
        m.pages.labels(model).inc()
        m.saved_tokens.labels(model).inc(report.tokens_saved)
        if not report.tripped:
            return
        m.degenerate_pages.labels(model).inc()
        for attempt, action in run.trips:
            assert attempt.verdict is not None
            m.trips.labels(model, attempt.verdict.kind, action).inc()
            m.lag.labels(model).observe(attempt.verdict.lag)
        if report.outcome in ("recovered", "failed"):
            m.recoveries.labels(model, report.outcome).inc()
        self.failure_log.announce(request.request_id)
        self._spawn(self._log_failures(request, job, run, result))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="failure-record")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _log_failures(
        self, request: OcrRequest, job: PageJob, run: PageRun, result: PageResult
    ) -> None:
        request_id_var.set(request.request_id)
        try:
            png = await asyncio.to_thread(job.page.png_bytes)
            sha = image_sha256(png)
            attempts = [asdict(a) for a in result.guard.attempts]
            for attempt, _ in run.trips:
                record = FailureRecord.of_attempt(
                    attempt,
                    request_id=request.request_id,
                    page=job.page.number,
                    model_id=self.engine.model_id,
                    model_revision=self.engine.revision,
                    prompt_version=prompt_version(job.prompt),
                    prompt=job.prompt,
                    guard_version=self.guard.version,
                    guard_mode=request.mode,
                    image_sha256=sha,
                    max_tokens=request.max_tokens,
                    output=self.engine.decode(attempt.token_ids),
                    recovered=result.guard.outcome == "recovered",
                    final_output=result.raw_text,
                    attempts=attempts,
                )
                await self.failure_log.append(record, png)
        except Exception:  # a side effect must never fail the request, nor die unseen
            logger.exception("request %s: could not log the failure", request.request_id)
            self.metrics.log_records.labels("error").inc()
        finally:
            self.failure_log.settle(request.request_id)

    def _body(self, request, results, started, first_token_at, elapsed) -> dict[str, Any]:
        generated = sum(r.guard.tokens_generated for r in results)
        return {
            "request_id": request.request_id,
            "model": {"id": self.engine.model_id, "revision": self.engine.revision},
            "guard_version": self.guard.version,
            "pages": [r.as_dict() for r in results],
            "usage": {
                "pages": len(results),
                "generated_tokens": generated,
                "saved_tokens": sum(r.guard.tokens_saved for r in results),
            },
            "timings": {
                "total_seconds": round(elapsed, 4),
                "first_token_seconds": round(first_token_at - started, 4)
                if first_token_at
                else None,
            },
        }

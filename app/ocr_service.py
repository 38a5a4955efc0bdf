"""Serves OCR requests: admission, pages in order, metrics and failure records."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from .admission import Admission, Reservation
from .engines.base import Engine
from .guard import GuardConfig
from .guard.policy import GuardMode
from .guard.recovery import RecoveryConfig
from .images import Page
from .logs import request_id_var
from .metrics import Metrics
from .page_log import PageLog
from .prompt import PagePrompt
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
    hands their side effects to the page log (the answer never waits for Redis)."""

    def __init__(
        self,
        engine: Engine,
        page_log: PageLog,
        metrics: Metrics,
        *,
        guard: GuardConfig,
        recovery: RecoveryConfig,
        max_queue: int,
    ) -> None:
        self.engine = engine
        self.page_log = page_log
        self.metrics = metrics
        self.guard = guard
        self.transcriber = Transcriber(engine, guard, recovery)
        self.model = engine.model_id
        self.started = int(time.time())
        inflight = metrics.inflight.labels(self.model)
        self.admission = Admission(engine.max_concurrency + max_queue, inflight.set)

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
        return await self.page_log.drain(max(0.0, deadline - time.monotonic()))

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
        self.page_log.served(request.request_id, request.prompt, request.pages, results)
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
        self.page_log.failures(
            request.request_id,
            request.mode,
            request.max_tokens,
            request.prompt,
            job.page,
            run.trips,
            result,
        )

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

"""Serves OCR requests: admission, pages in order, metrics and failure records."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from .engines.base import Engine
from .errors import Overloaded, ShuttingDown
from .failure_log import FailureLog, FailureRecord
from .guard import GuardConfig
from .guard.recovery import RecoveryConfig
from .images import Page, image_sha256
from .logs import request_id_var
from .metrics import Metrics
from .prompt import OCR_INSTRUCTION, PROMPT_VERSION
from .results import Event, GuardMode, PageEvent, PageResult
from .transcriber import PageJob, PageRun, Transcriber

logger = logging.getLogger(__name__)


@dataclass
class OcrRequest:
    pages: list[Page]
    mode: GuardMode = "recover"
    max_tokens: int = 1024
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    seed: int = 0


@dataclass
class ResultEvent:
    """The last event of a request: the whole response."""

    body: dict[str, Any]


class OcrService:
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
        self._capacity = engine.max_concurrency + max_queue
        self.inflight = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.model = engine.model_id

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Hold a place for one request, or refuse it with 503 when full or draining."""
        if self.draining:
            raise ShuttingDown("the server is shutting down", headers={"Retry-After": "5"})
        if self.inflight >= self._capacity:
            raise Overloaded(
                f"{self.inflight} requests in progress, the limit is {self._capacity}",
                headers={"Retry-After": "2"},
            )
        self.inflight += 1
        self._idle.clear()
        self.metrics.inflight.labels(self.model).inc()
        try:
            yield
        finally:
            self.inflight -= 1
            self.metrics.inflight.labels(self.model).dec()
            if self.inflight == 0:
                self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def transcribe(self, request: OcrRequest) -> AsyncIterator[Event | ResultEvent]:
        """Events of every page in order, then a ``ResultEvent``. Must run inside ``admit``."""
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
                OCR_INSTRUCTION,
                request.max_tokens,
                request.mode,
                request.seed,
            )
            run = PageRun(history=[])
            async for event in self.transcriber.run(job, run):
                if isinstance(event, PageEvent):
                    await self._account(request, job, run, event.result)
                    results.append(event.result)
                yield event
            if first_token_at is None and run.first_token_at is not None:
                first_token_at = run.first_token_at
                self.metrics.ttft.labels(self.model).observe(first_token_at - started)
        elapsed = time.monotonic() - started
        self.metrics.duration.labels(self.model).observe(elapsed)
        yield ResultEvent(self._body(request, results, started, first_token_at, elapsed))

    async def _account(
        self, request: OcrRequest, job: PageJob, run: PageRun, result: PageResult
    ) -> None:
        m, model, report = self.metrics, self.model, result.guard
        m.pages.labels(model).inc()
        m.generated_tokens.labels(model).inc(report.tokens_generated)
        m.saved_tokens.labels(model).inc(report.tokens_saved)
        if not report.tripped:
            return
        m.degenerate_pages.labels(model).inc()
        for attempt in run.history:
            if attempt.verdict is not None:
                m.trips.labels(model, attempt.verdict.kind, request.mode).inc()
                m.lag.labels(model).observe(attempt.verdict.lag)
        if request.mode == "recover":
            m.recoveries.labels(
                model, "recovered" if report.action == "recovered" else "failed"
            ).inc()
        await self._log_failures(request, job, run, result)

    async def _log_failures(
        self, request: OcrRequest, job: PageJob, run: PageRun, result: PageResult
    ) -> None:
        try:
            png = job.page.png_bytes()
            sha = image_sha256(png)
            result.image_sha256 = sha
            attempts = [a.__dict__ for a in result.guard.attempts]
            for attempt in run.history:
                if attempt.verdict is None:
                    continue
                record = FailureRecord(
                    request_id=request.request_id,
                    page=job.page.number,
                    model_id=self.engine.model_id,
                    model_revision=self.engine.revision,
                    prompt_version=PROMPT_VERSION,
                    prompt=job.prompt,
                    guard_version=self.guard.version,
                    guard_mode=request.mode,
                    image_sha256=sha,
                    attempt=attempt.attempt.number,
                    sampling={
                        "temperature": attempt.attempt.temperature,
                        "seed": attempt.attempt.seed,
                        "max_tokens": request.max_tokens,
                        "mode": attempt.attempt.mode,
                        "prefix_tokens": len(attempt.attempt.prefix_token_ids),
                    },
                    output=self.engine.decode(attempt.token_ids),
                    output_token_ids=list(attempt.token_ids),
                    verdict=attempt.verdict.as_dict(),
                    recovered=result.guard.action == "recovered",
                    final_output=result.raw_text,
                    attempts=attempts,
                )
                await self.failure_log.append(record, png)
        except Exception:  # a side effect must never fail the request
            logger.exception("request %s: could not log the failure", request.request_id)

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

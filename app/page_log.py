"""A served request's side effects, written in the background: a failure record per guard trip
(with the page image) and the request itself, remembered so that any of its pages can be
corrected. The answer never waits for them; they never fail it; feedback and shutdown can
wait for a request's writes to land."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Coroutine
from dataclasses import asdict
from typing import Any

from redis.exceptions import RedisError

from .engines.base import Engine
from .failure_log import FailureLog
from .failure_record import FailureRecord, PageSample
from .guard.policy import TripAction
from .guard.recovery import AttemptResult
from .images import Page, image_sha256
from .logs import request_id_var
from .metrics import Metrics
from .prompt import PagePrompt, prompt_version
from .results import PageResult
from .review_store import ReviewStore

logger = logging.getLogger(__name__)


class PageLog:
    def __init__(
        self,
        engine: Engine,
        failure_log: FailureLog,
        review: ReviewStore,
        metrics: Metrics,
        guard_version: str,
        keep_clean_pages: float = 0.0,
    ) -> None:
        self._keep = keep_clean_pages
        self.engine = engine
        self.failure_log = failure_log
        self.review = review
        self.metrics = metrics
        self.guard_version = guard_version
        self._tasks: dict[str, set[asyncio.Task[None]]] = {}

    def failures(
        self,
        request_id: str,
        mode: str,
        max_tokens: int,
        prompt: PagePrompt,
        page: Page,
        trips: list[tuple[AttemptResult, TripAction]],
        result: PageResult,
    ) -> None:
        """Log every trip of a page (PNG encoding and the Redis write, in the background)."""
        self._spawn(
            request_id, self._failures(request_id, mode, max_tokens, prompt, page, trips, result)
        )

    def served(
        self, request_id: str, prompt: PagePrompt, pages: list[Page], results: list[PageResult]
    ) -> None:
        """Remember the request so that its pages can be corrected (``record_ttl``), and keep
        a share of its clean pages for retraining (``keep_clean_pages``)."""
        outputs = {r.page: r.raw_text for r in results}
        self._spawn(request_id, self._remember(request_id, prompt, outputs))
        for page, result in zip(pages, results):
            if not result.guard.tripped and self._keep > 0 and random.random() < self._keep:
                self._spawn(request_id, self._keep_page(request_id, prompt, page, result))

    def writing(self, request_id: str) -> bool:
        return bool(self._tasks.get(request_id))

    async def settled(self, request_id: str, timeout: float = 5.0) -> None:
        """Wait until the background writes of ``request_id`` are done (or ``timeout``)."""
        tasks = self._tasks.get(request_id)
        if tasks:
            await asyncio.wait(set(tasks), timeout=timeout)

    async def drain(self, timeout: float) -> bool:
        """Whether every background write ended within ``timeout`` (shutdown)."""
        tasks = {t for group in self._tasks.values() for t in group}
        if not tasks:
            return True
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        return not pending

    def _spawn(self, request_id: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name=f"page-log-{request_id}")
        group = self._tasks.setdefault(request_id, set())
        group.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            group.discard(finished)
            if not group:
                self._tasks.pop(request_id, None)

        task.add_done_callback(done)

    async def _failures(self, request_id, mode, max_tokens, prompt, page, trips, result) -> None:
        request_id_var.set(request_id)
        try:
            png = await asyncio.to_thread(page.png_bytes)
            sha = image_sha256(png)
            attempts = [asdict(a) for a in result.guard.attempts]
            for attempt, _ in trips:
                record = FailureRecord.of_attempt(
                    attempt,
                    request_id=request_id,
                    page=page.number,
                    model_id=self.engine.model_id,
                    model_revision=self.engine.revision,
                    prompt_version=prompt_version(prompt),
                    prompt=prompt,
                    guard_version=self.guard_version,
                    guard_mode=mode,
                    image_sha256=sha,
                    max_tokens=max_tokens,
                    output=self.engine.decode(attempt.token_ids),
                    decode=self.engine.decode,
                    recovered=result.guard.outcome == "recovered",
                    final_output=result.raw_text,
                    attempts=attempts,
                )
                await self.failure_log.append(record, png)
        except Exception:  # a side effect must never fail the request, nor die unseen
            logger.exception("request %s: could not log the failure", request_id)
            self.metrics.log_records.labels("error").inc()

    async def _keep_page(
        self, request_id: str, prompt: PagePrompt, page: Page, result: PageResult
    ) -> None:
        try:
            png = await asyncio.to_thread(page.png_bytes)
            sample = PageSample(
                request_id=request_id,
                page=page.number,
                model_id=self.engine.model_id,
                model_revision=self.engine.revision,
                prompt=prompt.text,
                prompt_system=prompt.system,
                prompt_image_first=prompt.image_first,
                image_sha256=image_sha256(png),
                output=result.raw_text,
            )
            await self.review.keep_page(sample, png)
        except (RedisError, OSError) as exc:  # a sample lost is no request lost
            logger.warning("request %s: clean page not kept (%s)", request_id, exc)
            self.metrics.log_records.labels("error").inc()

    async def _remember(self, request_id: str, prompt: PagePrompt, outputs: dict[int, str]) -> None:
        try:
            await self.review.remember(
                request_id, self.engine.model_id, self.engine.revision, prompt, outputs
            )
        except (RedisError, OSError) as exc:  # Redis down: corrections of it get a 404
            logger.warning("request %s: not remembered for corrections (%s)", request_id, exc)
            self.metrics.log_records.labels("error").inc()

"""Builds the FastAPI application and its long-lived objects."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from .api import handlers
from .api.chat_routes import router as chat_router
from .api.limits import BodyLimitMiddleware
from .api.review_routes import router as review_router
from .api.routes import router
from .api.web_routes import WEB, info_router
from .api.web_routes import router as web_router
from .config import Settings, get_settings
from .engines import Engine, load_engine
from .failure_log import FailureLog
from .guard import DEFAULT_CONFIG as GUARD_CONFIG
from .guard import NATIVE as GUARD_COMPILED
from .guard.recovery import RecoveryConfig
from .metrics import Metrics
from .ocr_service import OcrService
from .page_log import PageLog
from .review_store import ReviewStore

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """The app. ``engine`` lets a caller (a test, a benchmark) supply a loaded engine."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        metrics = Metrics()
        client = aioredis.Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout_seconds,
            socket_connect_timeout=settings.redis_timeout_seconds,
        )
        failure_log = FailureLog(
            client,
            metrics,
            keys=settings.redis_keys,
            stream_maxlen=settings.stream_maxlen,
            image_ttl_seconds=settings.image_ttl_seconds,
            record_ttl_seconds=settings.record_ttl_seconds,
            buffer_max_records=settings.buffer_max_records,
            buffer_max_bytes=settings.buffer_max_bytes,
            flush_interval_seconds=settings.flush_interval_seconds,
        )
        review = ReviewStore(
            client,
            settings.redis_keys,
            record_ttl_seconds=settings.record_ttl_seconds,
            image_ttl_seconds=settings.image_ttl_seconds,
            corrections_maxlen=settings.stream_maxlen,
        )
        served = engine or load_engine(settings)
        await served.start()
        recovery = RecoveryConfig(
            strategy=settings.guard_strategy, max_attempts=settings.guard_max_attempts
        )
        page_log = PageLog(
            served,
            failure_log,
            review,
            metrics,
            GUARD_CONFIG.version,
            keep_clean_pages=settings.keep_clean_pages,
        )
        service = OcrService(
            served,
            page_log,
            metrics,
            guard=GUARD_CONFIG,
            recovery=recovery,
            max_queue=settings.max_queue,
        )
        metrics.start_series(served.model_id)
        guard_build = "compiled" if GUARD_COMPILED else "interpreted"
        metrics.info.info(
            {
                "model": served.model_id,
                "revision": served.revision,
                "guard_version": GUARD_CONFIG.version,
                "guard_build": guard_build,
            }
        )
        app.state.settings = settings
        app.state.metrics = metrics
        app.state.failure_log = failure_log
        app.state.review = review
        app.state.service = service
        failure_log.start()
        logger.info(
            "serving %s (%s) with guard %s (%s)",
            served.model_id,
            served.revision,
            GUARD_CONFIG.version,
            guard_build,
        )
        try:
            yield
        finally:
            service.draining = True
            if not await service.wait_idle(settings.shutdown_grace_seconds):
                logger.warning(
                    "shutdown: %d requests still in flight after the grace period", service.inflight
                )
            await failure_log.close()
            if engine is None:
                await served.close()
            await client.aclose()

    app = FastAPI(
        title="ocrguard",
        version="0.1.0",
        summary="Structured OCR with a live degeneration guard",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.include_router(router)
    app.include_router(review_router)
    app.include_router(chat_router)
    app.include_router(info_router)
    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=WEB), name="static")

    handlers.install(app)
    return app

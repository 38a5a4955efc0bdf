"""The HTTP routes: validate, call the service, answer JSON or an SSE stream."""

from __future__ import annotations

from contextlib import aclosing

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.ocr_service import OcrRequest, ResultEvent

from .deps import (
    FailureLogDep,
    MetricsDep,
    ServiceDep,
    SettingsDep,
    require_key,
    require_key_for_health,
    require_key_for_metrics,
)
from .disconnect import unless_gone
from .errors import responses
from .inputs import read_ocr_request
from .schemas import OcrJsonRequest, OcrOptions
from .sse import ReservedStream, sse_events

router = APIRouter()

_OCR_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        **OcrOptions.model_json_schema()["properties"],
                    },
                }
            },
            "application/json": {"schema": OcrJsonRequest.model_json_schema()},
        },
    }
}


@router.post(
    "/v1/ocr",
    dependencies=[Depends(require_key)],
    openapi_extra=_OCR_BODY,
    responses={
        200: {
            "description": "The pages (JSON), or with stream=true Server-Sent Events "
            "(delta, guard, page, result, error)",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **responses(401, 413, 415, 422, 499, 502, 503, 504),
    },
    summary="Transcribe a document image or PDF into {header, margin, footer, text}",
)
async def ocr(request: Request, settings: SettingsDep, service: ServiceDep) -> Response:
    options, pages = await read_ocr_request(request, settings)
    job = OcrRequest(
        pages=pages,
        mode=options.guard,
        max_tokens=options.max_tokens or settings.max_tokens,
        seed=options.seed,
    )
    reservation = service.reserve()  # 503 now, before a 200 starts streaming
    if options.stream:
        return ReservedStream(
            sse_events(service.transcribe(job), job.request_id),
            reservation,
            headers={"Cache-Control": "no-cache", "X-Request-Id": job.request_id},
        )

    async def answer() -> dict:
        async with aclosing(service.transcribe(job)) as events:
            async for event in events:
                if isinstance(event, ResultEvent):
                    return event.body
        raise RuntimeError("transcribe ended without a result")  # pragma: no cover

    async with reservation:
        body = await unless_gone(request, answer())
    return JSONResponse(body, headers={"X-Request-Id": job.request_id})


@router.get("/healthz", dependencies=[Depends(require_key_for_health)])
async def healthz() -> dict:
    return {"status": "alive"}


@router.get(
    "/readyz",
    dependencies=[Depends(require_key_for_health)],
    responses={503: {"description": "Not ready: no model, an unreachable engine, or draining"}},
)
async def readyz(
    service: ServiceDep, failure_log: FailureLogDep, metrics: MetricsDep
) -> JSONResponse:
    """503 while the model is not loaded or the server drains. A Redis outage only makes
    the state ``degraded``: OCR still works and failure records wait in memory."""
    model_ok = service.engine.ready and not service.draining
    redis_ok = await failure_log.ping()
    status = "ready" if model_ok and redis_ok else ("degraded" if model_ok else "unavailable")
    metrics.ready.set(1 if model_ok else 0)
    metrics.redis_up.set(1 if redis_ok else 0)
    body = {
        "status": status,
        "model": {
            "id": service.engine.model_id,
            "revision": service.engine.revision,
            "loaded": service.engine.ready,
        },
        "draining": service.draining,
        "redis": {
            "reachable": redis_ok,
            "buffered_records": failure_log.buffered,
            "dropped_records": failure_log.dropped,
        },
        "inflight": service.inflight,
    }
    return JSONResponse(body, status_code=200 if model_ok else 503)


@router.get(
    "/metrics",
    dependencies=[Depends(require_key_for_metrics)],
    response_class=Response,
    responses={
        200: {"description": "Prometheus text exposition", "content": {"text/plain": {}}},
        **responses(401),
    },
)
async def metrics_endpoint(metrics: MetricsDep, service: ServiceDep) -> Response:
    body = generate_latest(metrics.registry) + service.engine.metrics()
    return Response(body, media_type=CONTENT_TYPE_LATEST)

"""Errors into responses: ocrguard's shape on its own API, OpenAI's on the OpenAI routes."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from app.chat import openai_error, openai_status
from app.errors import InvalidRequest, NotFound, OcrGuardError

from .disconnect import ClientGone

OPENAI_PATHS = ("/v1/chat/", "/v1/models")
COUNTED_PATHS = ("/v1/ocr", "/v1/chat/completions")
_OUTCOME_BY_STATUS = {401: "unauthorized", 503: "overloaded"}


def install(app: FastAPI) -> None:
    app.add_exception_handler(OcrGuardError, _known)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(ClientGone, _gone)


def render(request: Request, error: OcrGuardError) -> JSONResponse:
    _count_refusal(request, error.status)
    if request.url.path.startswith(OPENAI_PATHS):
        return JSONResponse(openai_error(error), openai_status(error), headers=error.headers)
    body = {"error": {"code": error.code, "message": error.message}}
    return JSONResponse(body, status_code=error.status, headers=error.headers)


async def _known(request: Request, exc: OcrGuardError) -> JSONResponse:
    return render(request, exc)


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    )
    return render(request, InvalidRequest(problems))


async def _http(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's own refusals (an unknown path, a body that is not JSON) in the same shape."""
    if exc.status_code == 404:
        return render(request, NotFound(f"no route {request.url.path}"))
    error = InvalidRequest(str(exc.detail), headers=dict(exc.headers or {}))  # 405 keeps Allow
    error.status = exc.status_code  # e.g. 405, or 400 for a body that does not parse
    error.code = "bad_request" if exc.status_code == 400 else error.code
    return render(request, error)


async def _gone(request: Request, exc: ClientGone) -> Response:
    return Response(status_code=499)  # nginx's "client closed request": nobody reads it


def _count_refusal(request: Request, status: int) -> None:
    if request.url.path not in COUNTED_PATHS or not hasattr(request.app.state, "metrics"):
        return
    outcome = _OUTCOME_BY_STATUS.get(status, "client_error" if status < 500 else "server_error")
    request.app.state.metrics.requests.labels(request.app.state.service.model, outcome).inc()

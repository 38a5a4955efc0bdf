"""The service's errors: each has a stable code and the HTTP status it maps to."""

from __future__ import annotations


class OcrGuardError(Exception):
    code = "internal_error"
    status = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class PayloadTooLarge(OcrGuardError):
    code, status = "payload_too_large", 413


class UnsupportedMediaType(OcrGuardError):
    code, status = "unsupported_media_type", 415


class InvalidImage(OcrGuardError):
    code, status = "invalid_image", 422


class InvalidRequest(OcrGuardError):
    code, status = "invalid_request", 422


class Unauthorized(OcrGuardError):
    code, status = "unauthorized", 401


class NotFound(OcrGuardError):
    code, status = "not_found", 404


class Overloaded(OcrGuardError):
    code, status = "overloaded", 503


class StoreUnavailable(OcrGuardError):
    """Redis, where corrections and the review queue live, does not answer."""

    code, status = "store_unavailable", 503


class ShuttingDown(OcrGuardError):
    code, status = "shutting_down", 503


class EngineFailed(OcrGuardError):
    code, status = "engine_failed", 502


class EngineUnavailable(OcrGuardError):
    code, status = "engine_unavailable", 503


class EngineTimeout(OcrGuardError):
    code, status = "engine_timeout", 504


class EngineRejected(OcrGuardError):
    """The model server refused the request: its own 4xx status and message."""

    code = "engine_rejected"

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def from_engine(kind: str, message: str, status: int | None = None) -> OcrGuardError:
    """The HTTP error for an engine failure of ``kind`` (app.engines.base.EngineError)."""
    if kind == "unavailable":
        return EngineUnavailable(message, headers={"Retry-After": "5"})
    if kind == "timeout":
        return EngineTimeout(message)
    if kind == "rejected":
        return EngineRejected(message, status if status and 400 <= status < 500 else 400)
    return EngineFailed(message)

"""The error statuses each route documents in the OpenAPI schema, all with one error body."""

from __future__ import annotations

from typing import Any

from .schemas import ErrorResponse

_MEANINGS = {
    400: "Bad request",
    401: "A valid API key is required (Authorization: Bearer or X-Api-Key)",
    404: "Not found",
    413: "The request body is over the size limit",
    415: "Not a PNG, JPEG, TIFF or WebP image, nor a PDF",
    422: "Invalid request or image (too many pixels or pages, corrupt, bad options)",
    499: "The client closed the request before the answer",
    502: "The model engine failed",
    503: "Full, shutting down, or a dependency is unavailable (Retry-After)",
    504: "The model engine stopped answering",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for ``statuses`` with the error schema."""
    return {
        status: {"model": ErrorResponse, "description": _MEANINGS[status]} for status in statuses
    }

"""Server-Sent Events framing of the OCR event stream."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from app.errors import OcrGuardError
from app.ocr_service import ResultEvent
from app.results import DeltaEvent, Event, GuardEvent, PageEvent

logger = logging.getLogger(__name__)


def frame(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def sse_events(
    events: AsyncIterator[Event | ResultEvent], request_id: str
) -> AsyncIterator[bytes]:
    """Once the 200 is out, a failure becomes a final ``error`` event, never a cut body."""
    try:
        async for event in events:
            if isinstance(event, DeltaEvent):
                yield frame("delta", asdict(event))
            elif isinstance(event, GuardEvent):
                yield frame("guard", asdict(event))
            elif isinstance(event, PageEvent):
                yield frame("page", event.result.as_dict())
            elif isinstance(event, ResultEvent):
                yield frame("result", event.body)
    except OcrGuardError as exc:
        yield frame("error", {"request_id": request_id, "code": exc.code, "message": exc.message})
    except Exception:  # the stream's boundary: report, don't break the body
        logger.exception("request %s: stream failed", request_id)
        yield frame(
            "error",
            {"request_id": request_id, "code": "internal_error", "message": "internal error"},
        )

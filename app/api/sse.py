"""Server-Sent Events framing of the OCR event stream."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.admission import Reservation
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
                yield frame(
                    "delta", {"page": event.page, "attempt": event.attempt, "text": event.text}
                )
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


class ReservedStream(StreamingResponse):
    """An event stream that gives its admission reservation back however it ends: after
    the last event, when the client leaves mid-stream, or when sending the response start
    fails and the body never runs (its own ``finally`` would then never execute)."""

    def __init__(
        self, content: AsyncIterator[bytes], reservation: Reservation, headers: dict[str, str]
    ) -> None:
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self.reservation = reservation

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()  # aborts the engine request now, not when collected
            self.reservation.release()

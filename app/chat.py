"""OCR results in OpenAI's Chat Completions shapes: the whole answer, or its stream chunks.

``finish_reason`` says what the guard made of the page: ``stop`` for a clean or recovered
page, ``repetition`` (vLLM's name) when a loop was aborted or not recovered, ``length`` at
the token limit. The guard report rides along in an extra ``guard`` field.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from .errors import OcrGuardError
from .ocr_service import ResultEvent
from .results import DeltaEvent, Event, GuardEvent, PageEvent, PageResult

# ocrguard errors on the OpenAI routes: OpenAI's error type for each HTTP status
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "invalid_request_error",
    503: "service_unavailable",
    504: "timeout",
}


def openai_status(error: OcrGuardError) -> int:
    """The status an OpenAI client expects: a bad request is a 400, whatever ocrguard's
    more precise 415 or 422 says."""
    return 400 if error.status in (415, 422) else error.status


def openai_error(error: OcrGuardError) -> dict[str, Any]:
    status = openai_status(error)
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": error.message, "type": kind, "param": None, "code": error.code}}


def finish_reason(page: PageResult) -> str:
    if page.guard.outcome in ("aborted", "failed") or page.finish_reason == "repetition":
        return "repetition"
    if page.finish_reason == "length":
        return "length"
    return "stop"


class ChatFormat:
    """Formats one request's events for one model name."""

    def __init__(self, request_id: str, model: str, logprobs: bool, decode) -> None:
        self.id = f"chatcmpl-{request_id}"
        self.model = model
        self.created = int(time.time())
        self.logprobs = logprobs
        self._decode = decode

    def completion(self, page: PageEvent) -> dict[str, Any]:
        result = page.result
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": result.raw_text},
                    "logprobs": self._logprobs(page.token_ids, page.logprobs),
                    "finish_reason": finish_reason(result),
                }
            ],
            "usage": self._usage(page),
            "guard": asdict(result.guard),
        }

    async def chunks(
        self, events: AsyncIterator[Event | ResultEvent], include_usage: bool
    ) -> AsyncIterator[bytes]:
        """``data:`` lines: the role, each text delta, the finish with the guard report, the
        usage when asked, ``[DONE]``. An error after the 200 is a last ``error`` chunk."""
        yield self._data(self._chunk({"role": "assistant", "content": ""}))
        try:
            async for event in events:
                if isinstance(event, DeltaEvent):
                    delta = {"content": event.text}
                    logprobs = self._logprobs(event.token_ids, event.logprobs)
                    yield self._data(self._chunk(delta, logprobs=logprobs))
                elif isinstance(event, GuardEvent) and event.action != "flag":
                    pass  # the page event that follows ends the choice
                elif isinstance(event, PageEvent):
                    final = self._chunk({}, finish=finish_reason(event.result))
                    final["guard"] = asdict(event.result.guard)
                    yield self._data(final)
                    if include_usage:
                        usage = {**self._chunk({}), "choices": [], "usage": self._usage(event)}
                        yield self._data(usage)
        except OcrGuardError as exc:
            yield self._data(openai_error(exc))
        yield b"data: [DONE]\n\n"

    def _chunk(self, delta: dict, finish: str | None = None, logprobs=None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
            ],
        }

    def _usage(self, page: PageEvent) -> dict[str, int]:
        prompt = page.prompt_tokens or 0
        completion = page.result.guard.tokens_generated
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _logprobs(self, token_ids: list[int], logprobs: list[float | None]) -> dict | None:
        if not self.logprobs or not token_ids or any(lp is None for lp in logprobs):
            return None  # asked for, but this engine gave none for these tokens
        content = []
        for token, logprob in zip(token_ids, logprobs):
            text = self._decode([token])
            content.append(
                {
                    "token": text,
                    "logprob": logprob,
                    "bytes": list(text.encode()),
                    "top_logprobs": [],
                }
            )
        return {"content": content}

    @staticmethod
    def _data(payload: dict) -> bytes:
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()

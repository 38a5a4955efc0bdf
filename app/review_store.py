"""What people see and correct, in Redis: served requests, corrections, recent failures, images.

The failure log (``failure_log.py``) writes what the guard caught; this store keeps what a
person needs to correct any served page (its output and prompt, for ``record_ttl``), takes
the corrections (a hash per request for the export's join, and a stream so a correction sent
after an export still reaches the next round), and reads the failure stream back for the
review queue. Reads raise ``RedisError``: the routes answer 503 while Redis is down.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .failure_record import Correction, FailureRecord, PageSample, RedisKeys, SchemaMismatch
from .prompt import PagePrompt


@dataclass(frozen=True)
class Served:
    """A remembered request: enough to turn a correction of one of its pages into a pair."""

    model_id: str
    model_revision: str
    prompt: PagePrompt
    outputs: dict[int, str]
    """Raw output per page number."""
    images: dict[int, str]
    """Stored page image per page number (pages the guard caught)."""


class ReviewStore:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: RedisKeys,
        *,
        record_ttl_seconds: int,
        image_ttl_seconds: int,
        corrections_maxlen: int,
    ) -> None:
        self.client = client
        self.keys = keys
        self._record_ttl = record_ttl_seconds
        self._image_ttl = image_ttl_seconds
        self._maxlen = corrections_maxlen

    async def remember(
        self,
        request_id: str,
        model_id: str,
        revision: str,
        prompt: PagePrompt,
        outputs: dict[int, str],
    ) -> None:
        key = self.keys.request(request_id)
        mapping = {
            "model_id": model_id,
            "model_revision": revision,
            "prompt": json.dumps(
                [prompt.text, prompt.system, prompt.image_first], ensure_ascii=False
            ),
            **{f"page:{n}": text for n, text in outputs.items()},
        }
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, self._record_ttl)
            await pipe.execute()

    async def served(self, request_id: str) -> Served | None:
        raw = await self.client.hgetall(self.keys.request(request_id))
        if not raw:
            return None
        entry = {k.decode(): v.decode() for k, v in raw.items()}
        text, system, image_first = json.loads(entry.get("prompt", '["", null, true]'))
        pages = {int(k[5:]): v for k, v in entry.items() if k.startswith("page:")}
        images = {int(k[6:]): v for k, v in entry.items() if k.startswith("image:")}
        return Served(
            entry.get("model_id", ""),
            entry.get("model_revision", ""),
            PagePrompt(text, system, image_first),
            pages,
            images,
        )

    async def store_correction(self, correction: Correction, image_png: bytes | None) -> None:
        feedback = self.keys.feedback(correction.request_id)
        payload = {**correction.fields, "page": correction.page, "time": correction.time}
        if correction.note:
            payload["note"] = correction.note
        async with self.client.pipeline(transaction=True) as pipe:
            if image_png is not None:
                image = self.keys.image(correction.image_sha256)
                pipe.set(image, image_png, nx=True, ex=self._image_ttl)
                pipe.expire(image, self._image_ttl)
            pipe.hset(feedback, str(correction.page), json.dumps(payload, ensure_ascii=False))
            pipe.expire(feedback, self._record_ttl)
            pipe.xadd(
                self.keys.corrections(),
                correction.to_fields(),
                maxlen=self._maxlen,
                approximate=True,
            )
            await pipe.execute()

    async def keep_page(self, sample: PageSample, image_png: bytes) -> None:
        image = self.keys.image(sample.image_sha256)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(image, image_png, nx=True, ex=self._image_ttl)
            pipe.expire(image, self._image_ttl)
            pipe.xadd(self.keys.pages(), sample.to_fields(), maxlen=self._maxlen, approximate=True)
            await pipe.execute()

    async def recent_failures(self, limit: int, before: str | None = None) -> dict[str, Any]:
        """The newest failure records (before stream id ``before``), each with its
        correction if one was sent, and the stream's length."""
        if before == "0-0":  # nothing comes before the first possible id
            return {"total": await self.client.xlen(self.keys.stream), "items": []}
        end = f"({before}" if before else "+"
        entries = await self.client.xrevrange(self.keys.stream, max=end, min="-", count=limit)
        items = []
        for entry_id, raw in entries:
            fields = {k.decode(): v.decode() for k, v in raw.items()}
            try:
                record = FailureRecord.from_fields(fields)
            except (SchemaMismatch, ValueError, KeyError, TypeError):
                continue  # not ours to show
            corrected = await self.client.hget(
                self.keys.feedback(record.request_id), str(record.page)
            )
            items.append((entry_id.decode(), record, json.loads(corrected) if corrected else None))
        return {"total": await self.client.xlen(self.keys.stream), "items": items}

    async def corrections_count(self) -> int:
        return await self.client.xlen(self.keys.corrections())

    async def image(self, sha256: str) -> bytes | None:
        return await self.client.get(self.keys.image(sha256))


__all__ = ["RedisError", "ReviewStore", "Served"]

"""The failure log: one Redis Stream entry per guard trip, surviving Redis outages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .failure_record import FailureRecord, RedisKeys
from .metrics import Metrics

logger = logging.getLogger(__name__)


@dataclass
class _Pending:
    record: FailureRecord
    image_png: bytes | None
    size: int


class FailureLog:
    """Writes failure records and page images to Redis; never raises into a request.

    While Redis is unreachable, records wait in a bounded buffer (count and bytes) and a
    background task flushes them once Redis answers; the oldest are dropped, and counted,
    when the buffer is full.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        metrics: Metrics,
        *,
        keys: RedisKeys,
        stream_maxlen: int,
        image_ttl_seconds: int,
        record_ttl_seconds: int,
        buffer_max_records: int,
        buffer_max_bytes: int,
        flush_interval_seconds: float = 1.0,
    ) -> None:
        self.client = client
        self._metrics = metrics
        self.keys = keys
        self._maxlen = stream_maxlen
        self._image_ttl = image_ttl_seconds
        self._record_ttl = record_ttl_seconds
        self._max_records = buffer_max_records
        self._max_bytes = buffer_max_bytes
        self._interval = flush_interval_seconds
        self._buffer: deque[_Pending] = deque()
        self._buffer_bytes = 0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._flush_forever(), name="failure-log-flush")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        if self._buffer:
            logger.warning("%d failure records still buffered at shutdown", len(self._buffer))

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    async def append(self, record: FailureRecord, image_png: bytes | None) -> None:
        """Write a record (and its page image), or buffer it if Redis is unavailable."""
        pending = _Pending(record, image_png, _size(record, image_png))
        async with self._lock:
            if not self._buffer and await self._write(pending):
                self._metrics.log_records.labels("written").inc()
                return
            self._push(pending)

    async def flush(self) -> int:
        """Write buffered records in order; stop at the first failure. Returns how many."""
        written = 0
        async with self._lock:
            while self._buffer:
                if not await self._write(self._buffer[0]):
                    break
                item = self._buffer.popleft()
                self._buffer_bytes -= item.size
                written += 1
            self._metrics.log_buffered.set(len(self._buffer))
        if written:
            self._metrics.log_records.labels("flushed").inc(written)
            logger.info("flushed %d buffered failure records", written)
        return written

    def _push(self, pending: _Pending) -> None:
        self._buffer.append(pending)
        self._buffer_bytes += pending.size
        self._metrics.log_records.labels("buffered").inc()
        while len(self._buffer) > self._max_records or self._buffer_bytes > self._max_bytes:
            old = self._buffer.popleft()
            self._buffer_bytes -= old.size
            self.dropped += 1
            self._metrics.log_records.labels("dropped").inc()
            logger.warning("failure log buffer full: dropped record of %s", old.record.request_id)
        self._metrics.log_buffered.set(len(self._buffer))

    async def _write(self, pending: _Pending) -> bool:
        record = pending.record
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                if pending.image_png is not None:
                    key = self.keys.image(record.image_sha256)
                    pipe.set(key, pending.image_png, nx=True, ex=self._image_ttl)
                    pipe.expire(key, self._image_ttl)
                request = self.keys.request(record.request_id)  # where review finds the image
                pipe.hset(request, f"image:{record.page}", record.image_sha256)
                pipe.expire(request, self._record_ttl)
                pipe.xadd(
                    self.keys.stream, record.to_fields(), maxlen=self._maxlen, approximate=True
                )
                await pipe.execute()
            return True
        except (RedisError, OSError) as exc:
            self._metrics.log_records.labels("error").inc()
            logger.warning("failure log write failed (%s); buffering", exc)
            return False

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if self._buffer:
                try:
                    await self.flush()
                except Exception:  # the flusher must outlive any surprise
                    logger.exception("failure log flush crashed")


def _size(record: FailureRecord, image_png: bytes | None) -> int:
    return len(record.output) * 4 + len(record.output_token_ids) * 8 + len(image_png or b"") + 1024

"""Runs a request's work until it is done or its client has gone, whichever comes first."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

T = TypeVar("T")

POLL_SECONDS = 0.25
"""How often a waiting non-streaming request checks that its client is still there."""


class ClientGone(Exception):
    """The client disconnected before the answer was ready; nobody is left to answer."""


async def unless_gone(request: Request, work: Awaitable[T]) -> T:
    """``await work``, cancelled (its engine request aborted) once the client disconnects.

    A streaming response notices a gone client when a write fails; a plain one writes only
    at the end, so without this a page whose client gave up would generate to its end."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=POLL_SECONDS)
            if done:
                return task.result()
            if await request.is_disconnected():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                raise ClientGone()
    finally:
        if not task.done():  # we were cancelled ourselves (server shutdown)
            task.cancel()

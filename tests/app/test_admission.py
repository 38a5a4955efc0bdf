"""Admission: reservations are given back exactly once, however a streamed response ends."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import ClientDisconnect

from app.admission import Admission
from app.api.sse import ReservedStream
from app.errors import Overloaded, ShuttingDown


def test_a_reservation_is_released_once_however_often_it_is_asked():
    admission = Admission(capacity=1)
    reservation = admission.reserve()
    with pytest.raises(Overloaded):
        admission.reserve()
    reservation.release()
    reservation.release()  # idempotent: the count does not go below zero
    assert admission.inflight == 0 and reservation.released
    admission.reserve()
    assert admission.inflight == 1


def test_draining_refuses_new_requests():
    admission = Admission(capacity=4)
    admission.draining = True
    with pytest.raises(ShuttingDown):
        admission.reserve()


async def _body(started: list[bool], closed: list[bool]):
    started.append(True)
    try:
        yield b"event: delta\ndata: {}\n\n"
        await asyncio.sleep(10)
        yield b"never"
    finally:
        closed.append(True)


async def _serve(response: ReservedStream, send) -> None:
    """Run the response as the server would, with a client that never speaks again."""

    async def receive():
        await asyncio.sleep(10)
        return {"type": "http.disconnect"}

    scope = {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "GET", "path": "/"}
    with pytest.raises((OSError, ClientDisconnect)):
        await response(scope, receive, send)


async def test_a_failed_response_start_releases_the_reservation():
    """Sending the response start fails (the client is gone): the body never runs, so its
    own ``finally`` cannot release anything; the response must."""
    admission = Admission(capacity=1)
    started, closed = [], []
    response = ReservedStream(_body(started, closed), admission.reserve(), headers={})

    async def send(message):
        raise OSError("connection reset")

    await _serve(response, send)
    assert admission.inflight == 0
    assert not started  # the body generator never ran


async def test_a_client_leaving_mid_stream_closes_the_body_and_releases():
    admission = Admission(capacity=1)
    started, closed = [], []
    response = ReservedStream(_body(started, closed), admission.reserve(), headers={})
    sent = []

    async def send(message):
        sent.append(message)
        if message.get("body"):
            raise OSError("broken pipe")  # the first event cannot be delivered

    await _serve(response, send)
    assert admission.inflight == 0
    assert started and closed  # the body was closed at once (the engine request aborted)

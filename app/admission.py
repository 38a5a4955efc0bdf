"""Admission: how many requests the service holds at once, as reservations that cannot leak."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .errors import Overloaded, ShuttingDown


class Reservation:
    """One admitted request's place. ``release`` is idempotent, so every path that may end
    the request (the body's ``finally``, the response's own ``finally``, a context manager)
    can call it and the place is given back exactly once."""

    def __init__(self, on_release: Callable[[], None]) -> None:
        self._on_release: Callable[[], None] | None = on_release

    @property
    def released(self) -> bool:
        return self._on_release is None

    def release(self) -> None:
        on_release, self._on_release = self._on_release, None
        if on_release is not None:
            on_release()

    async def __aenter__(self) -> Reservation:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()


class Admission:
    """Admits up to ``capacity`` requests (running plus waiting for an engine slot), refuses
    the rest with 503 and ``Retry-After``, and refuses everything while draining."""

    def __init__(self, capacity: int, on_change: Callable[[int], None] | None = None) -> None:
        self.capacity = capacity
        self.inflight = 0
        self.draining = False
        self._on_change = on_change or (lambda inflight: None)
        self._idle = asyncio.Event()
        self._idle.set()

    def reserve(self) -> Reservation:
        if self.draining:
            raise ShuttingDown("the server is shutting down", headers={"Retry-After": "5"})
        if self.inflight >= self.capacity:
            raise Overloaded(
                f"{self.inflight} requests in progress, the limit is {self.capacity}",
                headers={"Retry-After": "2"},
            )
        self.inflight += 1
        self._idle.clear()
        self._on_change(self.inflight)
        return Reservation(self._release)

    def _release(self) -> None:
        self.inflight -= 1
        self._on_change(self.inflight)
        if self.inflight == 0:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Whether every reservation was released within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

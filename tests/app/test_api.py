"""The service over real HTTP (uvicorn on loopback) against the real Redis."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.failure_record import FailureRecord
from app.images import image_sha256

from .. import samples
from ..conftest import LOOP_TEXT

pytestmark = pytest.mark.slow


def ocr(url: str, data: bytes = b"", *, filename: str = "page.png", timeout: float = 60, **fields):
    files = {"file": (filename, data, "application/octet-stream")}
    return httpx.post(
        f"{url}/v1/ocr", files=files, data={k: str(v) for k, v in fields.items()}, timeout=timeout
    )


def wait_until_idle(url: str, seconds: float = 10) -> None:
    """Poll until no request is in flight (or ``seconds`` pass; the caller asserts)."""
    deadline = time.monotonic() + seconds
    while metric_value(url, "ocrguard_inflight_requests") != 0 and time.monotonic() < deadline:
        time.sleep(0.05)


def sse(response: httpx.Response) -> list[tuple[str, dict]]:
    events = []
    for block in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def stream_entries(redis_client, key_prefix):
    return redis_client.xrange(key_prefix + "failures")


def test_round_trip_multipart(serve, random_model):
    with serve(random_model) as url:
        response = ocr(url, samples.png(), max_tokens=16, guard="recover")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["model"]["id"] == random_model.name
    [page] = body["pages"]
    assert page["page"] == 1
    assert set(page) >= {"header", "margin", "footer", "text", "raw_text", "valid_json", "guard"}
    assert page["guard"]["mode"] == "recover"
    assert page["guard"]["tokens_generated"] >= 1
    assert body["usage"]["pages"] == 1
    assert body["timings"]["total_seconds"] > 0


def test_json_body_base64_and_data_url(serve, random_model):
    encoded = base64.b64encode(samples.png()).decode()
    with serve(random_model) as url:
        plain = httpx.post(f"{url}/v1/ocr", json={"image": encoded, "max_tokens": 4}, timeout=60)
        data_url = httpx.post(
            f"{url}/v1/ocr",
            json={"image": f"data:image/png;base64,{encoded}", "max_tokens": 4},
            timeout=60,
        )
    assert plain.status_code == 200, plain.text
    assert data_url.status_code == 200, data_url.text


def test_pdf_gives_one_result_per_page_and_honours_the_range(serve, random_model):
    with serve(random_model) as url:
        both = ocr(url, samples.pdf(2), filename="doc.pdf", max_tokens=4)
        second = ocr(url, samples.pdf(2), filename="doc.pdf", max_tokens=4, pages="2")
    assert [p["page"] for p in both.json()["pages"]] == [1, 2]
    assert [p["page"] for p in second.json()["pages"]] == [2]


def test_loop_is_aborted_and_logged_with_its_image(serve, looping_model, redis_client, key_prefix):
    upload = samples.png()
    with serve(looping_model, max_tokens=200, guard_strategy="rewind") as url:
        response = ocr(url, upload, guard="abort")
    page = response.json()["pages"][0]
    guard = page["guard"]
    assert guard["tripped"] and guard["outcome"] == "aborted"
    assert guard["kind"] == "ngram_loop" and guard["period"] == 4
    assert (
        guard["tokens_generated"] < 40 and guard["tokens_saved"] == 200 - guard["tokens_generated"]
    )
    assert page["raw_text"] == LOOP_TEXT  # the loop's first copy is kept, the rest cut

    [(entry_id, fields)] = stream_entries(redis_client, key_prefix)
    record = FailureRecord.from_fields({k.decode(): v.decode() for k, v in fields.items()})
    assert record.request_id == response.json()["request_id"]
    assert record.verdict["kind"] == "ngram_loop"
    assert record.output.startswith(LOOP_TEXT * 3)
    assert record.prompt_version and record.guard_version and record.model_revision
    image = redis_client.get(f"{key_prefix}image:{record.image_sha256}")
    assert image is not None and image_sha256(image) == record.image_sha256
    assert 0 < redis_client.ttl(f"{key_prefix}image:{record.image_sha256}") <= 30 * 86400


def test_recover_rewinds_past_the_loop(serve, looping_model, redis_client, key_prefix):
    with serve(looping_model, max_tokens=200, guard_strategy="rewind") as url:
        response = ocr(url, samples.png(), guard="recover")
    page = response.json()["pages"][0]
    assert page["guard"]["outcome"] == "recovered"
    assert [a["mode"] for a in page["guard"]["attempts"]] == ["initial", "resume"]
    assert page["raw_text"] == LOOP_TEXT and page["finish_reason"] == "stop"
    [(_, fields)] = stream_entries(redis_client, key_prefix)
    assert fields[b"recovered"] == b"true"


def test_recover_gives_up_after_the_last_attempt(serve, stuck_model):
    with serve(stuck_model, max_tokens=200, guard_max_attempts=3, guard_strategy="rewind") as url:
        response = ocr(url, samples.png(), guard="recover")
    guard = response.json()["pages"][0]["guard"]
    assert guard["outcome"] == "failed"
    assert [a["mode"] for a in guard["attempts"]] == ["initial", "resume", "retry"]


def test_detect_only_flags(serve, looping_model):
    with serve(looping_model, max_tokens=60) as url:
        response = ocr(url, samples.png(), guard="detect")
    page = response.json()["pages"][0]
    assert page["guard"]["outcome"] == "flagged" and page["finish_reason"] == "length"
    assert page["guard"]["tokens_generated"] == 60


def test_guard_off_never_trips(serve, looping_model, redis_client, key_prefix):
    with serve(looping_model, max_tokens=60) as url:
        response = ocr(url, samples.png(), guard="off")
    assert response.json()["pages"][0]["guard"]["tripped"] is False
    assert stream_entries(redis_client, key_prefix) == []


def test_sse_events_in_order(serve, looping_model):
    with serve(looping_model, max_tokens=200, guard_strategy="rewind") as url:
        response = ocr(url, samples.png(), guard="recover", stream="true")
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse(response)
    names = [name for name, _ in events]
    assert names[0] == "delta"
    assert names[-2:] == ["page", "result"]
    guard = next(data for name, data in events if name == "guard")
    assert guard["action"] == "resume" and guard["keep_chars"] == len(LOOP_TEXT)
    streamed = "".join(data["text"] for name, data in events if name == "delta")
    assert streamed.startswith(LOOP_TEXT * 3)
    assert events[-1][1]["pages"][0]["raw_text"] == LOOP_TEXT


def test_feedback_is_attached_to_the_logged_request(serve, looping_model, redis_client, key_prefix):
    with serve(looping_model, max_tokens=100) as url:
        request_id = ocr(url, samples.png(), guard="abort").json()["request_id"]
        stored = httpx.post(f"{url}/v1/ocr/{request_id}/feedback", json={"text": "Nota fiscal 123"})
        unknown = httpx.post(f"{url}/v1/ocr/nope/feedback", json={"text": "x"})
        empty = httpx.post(f"{url}/v1/ocr/{request_id}/feedback", json={"page": 1})
    assert stored.status_code == 202, stored.text
    stored_page = redis_client.hget(f"{key_prefix}feedback:{request_id}", "1")
    assert json.loads(stored_page)["text"] == "Nota fiscal 123"
    assert unknown.status_code == 404
    assert empty.status_code == 422


@pytest.mark.parametrize(
    ("upload", "fields", "status"),
    [
        (b"hello, I am text", {}, 415),
        (b"GIF89a" + b"\x00" * 64, {}, 415),
        (b"", {}, 422),
        (samples.png()[:60], {}, 422),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, {}, 422),
        (samples.png_bomb(), {}, 422),
        (samples.pdf(3), {"pages": "1-3"}, 422),  # over max_pdf_pages=2
        (samples.pdf(2), {"pages": "5"}, 422),
        (samples.png(), {"colour": "blue"}, 422),
        (samples.png(), {"guard": "sometimes"}, 422),
        (samples.png(), {"max_tokens": "0"}, 422),
        (samples.png(), {"max_tokens": "100000"}, 422),
    ],
    ids=[
        "text",
        "gif",
        "empty",
        "truncated-png",
        "corrupt-png",
        "bomb",
        "pdf-pages",
        "pdf-range",
        "unknown-option",
        "bad-guard",
        "zero-tokens",
        "too-many-tokens",
    ],
)
def test_bad_input_gets_a_clear_error(serve, random_model, upload, fields, status):
    with serve(random_model, max_pdf_pages=2, max_image_pixels=10_000_000) as url:
        response = ocr(url, upload, **fields)
        assert httpx.get(f"{url}/healthz").status_code == 200  # still up
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] and error["message"]


def test_a_malformed_multipart_body_is_a_documented_422(serve, random_model):
    """Starlette refuses a multipart body over its limits with a bare 400; the API answers
    with its own error shape and a status its OpenAPI document lists (schemathesis found
    this with 20 repeated form fields)."""
    with serve(random_model) as url:
        files = [("file", ("page.png", samples.png(), "image/png"))]
        files += [("stream", (None, "false")) for _ in range(20)]
        response = httpx.post(f"{url}/v1/ocr", files=files)
        assert httpx.get(f"{url}/healthz").status_code == 200
        documented = httpx.get(f"{url}/openapi.json").json()["paths"]["/v1/ocr"]["post"]
    assert response.status_code == 422, response.text
    assert "Too many fields" in response.json()["error"]["message"]
    assert "422" in documented["responses"]


def test_bad_json_bodies(serve, random_model):
    with serve(random_model) as url:
        not_json = httpx.post(
            f"{url}/v1/ocr", content=b"{nope", headers={"content-type": "application/json"}
        )
        no_image = httpx.post(f"{url}/v1/ocr", json={"stream": False})
        bad_b64 = httpx.post(f"{url}/v1/ocr", json={"image": "!!!"})
        wrong_type = httpx.post(
            f"{url}/v1/ocr", content=b"x", headers={"content-type": "text/plain"}
        )
    assert [r.status_code for r in (not_json, no_image, bad_b64, wrong_type)] == [
        422,
        422,
        422,
        415,
    ]


def test_body_over_the_limit_is_413(serve, random_model):
    with serve(random_model, max_body_bytes=50_000) as url:
        declared = ocr(url, b"\x89PNG" + b"\x00" * 60_000)

        def chunks():  # no Content-Length: the limit applies while reading
            for _ in range(40):
                yield b"x" * 2_000

        streamed = httpx.post(
            f"{url}/v1/ocr", content=chunks(), headers={"content-type": "application/json"}
        )
    assert declared.status_code == 413
    assert streamed.status_code == 413


def test_over_capacity_is_503_with_retry_after(serve, stuck_model):
    with (
        serve(stuck_model, max_tokens=4000, max_concurrency=1, max_queue=0) as url,
        httpx.Client(timeout=60) as client,
    ):
        files = {"file": ("p.png", samples.png())}
        with client.stream(
            "POST", f"{url}/v1/ocr", files=files, data={"stream": "true", "guard": "off"}
        ) as busy:
            lines = busy.iter_lines()  # keep a reference: a collected iterator closes the stream
            next(lines)  # the first request now holds the only slot
            assert httpx.get(f"{url}/readyz").json()["inflight"] == 1
            refused = httpx.post(f"{url}/v1/ocr", files=files, timeout=30)
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) > 0


def metric_value(url: str, name: str, **labels) -> float:
    text = httpx.get(f"{url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_client_disconnect_aborts_generation(serve, stuck_model):
    with serve(stuck_model, max_tokens=4000) as url:
        with httpx.Client(timeout=60) as client:
            files = {"file": ("p.png", samples.png())}
            with client.stream(
                "POST", f"{url}/v1/ocr", files=files, data={"stream": "true", "guard": "off"}
            ) as r:
                lines = r.iter_lines()
                next(lines)
                assert metric_value(url, "ocrguard_inflight_requests") == 1
        wait_until_idle(url)
        assert metric_value(url, "ocrguard_inflight_requests") == 0
        assert metric_value(url, "ocrguard_requests_total", outcome="cancelled") == 1
        generated = metric_value(url, "ocrguard_generated_tokens_total")
    assert generated < 4000  # it did not run on to max_tokens


def test_a_client_that_gives_up_on_a_plain_request_aborts_it_and_its_tokens_count(
    serve, stuck_model
):
    """Without a stream, nothing is written until the end: the server polls for the client
    and cancels the page when it has gone; the tokens it generated are counted all the same."""
    with serve(stuck_model, max_tokens=4000) as url:
        with pytest.raises(httpx.ReadTimeout):
            ocr(url, samples.png(), guard="off", timeout=1.5)
        wait_until_idle(url)
        assert metric_value(url, "ocrguard_inflight_requests") == 0
        assert metric_value(url, "ocrguard_requests_total", outcome="cancelled") == 1
        generated = metric_value(url, "ocrguard_generated_tokens_total")
        time.sleep(1)
        assert metric_value(url, "ocrguard_generated_tokens_total") == generated  # stopped
    assert 0 < generated < 4000


def test_metrics_parse_and_count_trips(serve, looping_model):
    with serve(looping_model, max_tokens=100) as url:
        ocr(url, samples.png(), guard="abort")
        ocr(url, samples.png(), guard="off")
        model = looping_model.name
        assert metric_value(url, "ocrguard_pages_total", model=model) == 2
        assert metric_value(url, "ocrguard_degenerate_pages_total", model=model) == 1
        assert (
            metric_value(
                url, "ocrguard_guard_trips_total", model=model, kind="ngram_loop", action="abort"
            )
            == 1
        )
        assert metric_value(url, "ocrguard_requests_total", model=model, outcome="ok") == 2
        assert metric_value(url, "ocrguard_saved_tokens_total", model=model) > 50
        assert metric_value(url, "ocrguard_guard_detection_lag_tokens_count", model=model) == 1
        assert metric_value(url, "ocrguard_failure_log_records_total", result="written") == 1
        # the guard the service runs: compiled by scripts/setup (app/guard_build.py)
        assert metric_value(url, "ocrguard_build_info", model=model, guard_build="compiled") == 1


def test_api_keys(serve, random_model):
    with serve(random_model, api_keys="k1,k2", public_metrics=False) as url:
        assert ocr(url, samples.png(), max_tokens=2).status_code == 401
        bearer = httpx.post(
            f"{url}/v1/ocr",
            files={"file": ("p.png", samples.png())},
            data={"max_tokens": "2"},
            headers={"Authorization": "Bearer k2"},
            timeout=60,
        )
        header = httpx.post(
            f"{url}/v1/ocr",
            files={"file": ("p.png", samples.png())},
            data={"max_tokens": "2"},
            headers={"X-Api-Key": "k1"},
            timeout=60,
        )
        assert bearer.status_code == 200 and header.status_code == 200
        assert httpx.get(f"{url}/healthz").status_code == 200
        assert httpx.get(f"{url}/metrics").status_code == 401
        assert httpx.get(f"{url}/metrics", headers={"X-Api-Key": "k1"}).status_code == 200


def test_readyz_and_openapi(serve, random_model):
    with serve(random_model) as url:
        ready = httpx.get(f"{url}/readyz")
        docs = httpx.get(f"{url}/docs")
        spec = httpx.get(f"{url}/openapi.json").json()
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert docs.status_code == 200
    assert "multipart/form-data" in spec["paths"]["/v1/ocr"]["post"]["requestBody"]["content"]


def test_the_embedded_default_model_serves_a_page(serve):
    from app.config import EMBEDDED_MODEL, Settings

    assert Settings().model == str(EMBEDDED_MODEL)  # the default of OCRGUARD_MODEL
    with serve(EMBEDDED_MODEL, max_tokens=48) as url:
        response = ocr(url, samples.png("Nota fiscal 123"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["id"] == "ocrguard-tiny" and body["model"]["revision"].startswith("sft-")
    assert body["pages"][0]["guard"]["tokens_generated"] > 0

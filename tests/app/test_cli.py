"""The ``ocrguard`` command line: guard scan, and a served process draining on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from .. import samples
from ..conftest import LOOP_CYCLE, REDIS_URL, free_port


def test_guard_scan_prints_one_json_line_per_file(tmp_path, random_model):
    loop = tmp_path / "loop.txt"
    loop.write_text("Cabeçalho do documento\n" + "| 0,00 | Total geral |\n" * 30, encoding="utf-8")
    clean = tmp_path / "clean.txt"
    clean.write_text(
        "Prefeitura Municipal de São Paulo\nDiário Oficial, 3 de março.\n", encoding="utf-8"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "guard",
            "scan",
            "--tokenizer",
            str(random_model),
            str(loop),
            str(clean),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["file"] == str(loop) and first["tripped"] is True
    assert (
        first["kind"] == "line_loop"
        and first["onset"] is not None
        and first["trip_at"] > first["onset"]
    )
    assert second["tripped"] is False and second["kind"] is None
    assert {"file", "tripped", "kind", "period", "onset", "trip_at"} <= set(first)


def test_guard_scan_judges_with_the_page_s_evidence_when_given_the_image(tmp_path, random_model):
    from PIL import Image

    rows = tmp_path / "rows.txt"
    rows.write_text("Cupom\n" + "| Café | 1 | 5,00 |\n" * 7, encoding="utf-8")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (400, 300), "white").save(blank)

    def scan(*options: str) -> dict:
        command = [sys.executable, "-m", "app.cli", "guard", "scan", "--tokenizer"]
        command += [str(random_model), *options, str(rows)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    # seven identical rows: a receipt may print them; a page that holds 4 lines, or none, not
    assert scan()["tripped"] is False and scan()["page_lines"] is None
    told = scan("--page-lines", "4")
    assert told["tripped"] is True and told["kind"] == "line_loop" and told["page_lines"] == 4
    seen = scan("--image", str(blank))
    assert seen["tripped"] is True and seen["page_lines"] == 0
    not_an_image = subprocess.run(
        [sys.executable, "-m", "app.cli", "guard", "scan", "--image", str(rows), str(rows)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert not_an_image.returncode == 2 and "--image" in not_an_image.stderr


@pytest.mark.slow
def test_sigterm_fails_readiness_first_and_lets_inflight_requests_finish(
    tmp_path, stuck_model, key_prefix
):
    port = free_port()
    env = {
        **os.environ,
        "OCRGUARD_MODEL": str(stuck_model),
        "OCRGUARD_REDIS_URL": REDIS_URL,
        "OCRGUARD_KEY_PREFIX": key_prefix,
        "OCRGUARD_STREAM_KEY": key_prefix + "failures",
        "OCRGUARD_DRAIN_SECONDS": "1.5",
        # Far above the few seconds the 3000 tokens take on an idle machine: on a loaded one
        # they took over 30 s, the grace ran out and the request was cut (500), a false failure.
        "OCRGUARD_SHUTDOWN_GRACE_SECONDS": "100",
        "OCRGUARD_MAX_TOKENS": "3000",
        "OCRGUARD_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "server did not start"
            time.sleep(0.1)
        result = {}

        def long_request():  # guard off: the stuck model runs to max_tokens (a few seconds)
            response = httpx.post(
                f"{url}/v1/ocr",
                files={"file": ("p.png", samples.png())},
                data={"guard": "off"},
                timeout=120,
            )
            result["status"] = response.status_code
            result["tokens"] = response.json()["usage"]["generated_tokens"]

        worker = threading.Thread(target=long_request)
        worker.start()
        while httpx.get(f"{url}/readyz").json()["inflight"] == 0:
            time.sleep(0.02)
        server.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        draining = httpx.get(f"{url}/readyz")
        assert draining.status_code == 503 and draining.json()["draining"] is True
        refused = httpx.post(f"{url}/v1/ocr", files={"file": ("p.png", samples.png())}, timeout=30)
        assert refused.status_code == 503
        worker.join(timeout=120)
        assert result == {"status": 200, "tokens": 3000}  # the in-flight request finished whole
        assert server.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert LOOP_CYCLE  # the model used loops; guard off kept it running

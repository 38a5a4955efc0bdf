"""A real Prometheus scrapes a real ocrguard and computes the degeneration rate from its trips."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from .. import samples
from ..conftest import free_port
from .commands import DOCKER, require

pytestmark = pytest.mark.slow

RULES = DOCKER / "prometheus" / "rules" / "ocrguard.rules.yml"
RATE = "ocrguard:degeneration_rate:ratio_rate5m"
START_TIMEOUT_S = 30
SCRAPE_TIMEOUT_S = 30
RULE_TIMEOUT_S = 60


@contextmanager
def running_prometheus(tmp_path: Path, target: str) -> Iterator[str]:
    """Prometheus on a free loopback port, scraping ``target`` every second with the rules."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "ocrguard", "static_configs": [{"targets": [target]}]}],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{free_port()}"
    log_path = tmp_path / "prometheus.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                require("prometheus"),
                f"--config.file={config_file}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address={address}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://{address}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(f"{url}/-/ready"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Prometheus did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def query(prometheus: str, expr: str) -> list[dict]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    return response.json()["data"]["result"]


def wait_for(prometheus: str, expr: str, timeout_s: float) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := query(prometheus, expr):
            return result
        time.sleep(0.5)
    pytest.fail(f"no result for {expr!r} within {timeout_s}s")


def trip(url: str) -> None:
    files = {"file": ("page.png", samples.png(), "image/png")}
    response = httpx.post(f"{url}/v1/ocr", files=files, data={"guard": "abort"}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["pages"][0]["guard"]["tripped"]


def test_prometheus_records_the_degeneration_rate_of_a_trip(serve, looping_model, tmp_path):
    model = looping_model.name
    with (
        serve(looping_model, max_tokens=100) as url,
        running_prometheus(tmp_path, url.removeprefix("http://")) as prom,
    ):
        # A labelled counter has no series before its first increment, and rate() over a
        # series that appears already at 1 is 0: the first trip brings the series into
        # being, the second one is the increase Prometheus sees between two scrapes.
        trip(url)
        wait_for(prom, f'ocrguard_degenerate_pages_total{{model="{model}"}}', SCRAPE_TIMEOUT_S)
        trip(url)
        deadline = time.monotonic() + RULE_TIMEOUT_S
        value = 0.0
        while time.monotonic() < deadline:
            result = query(prom, f'{RATE}{{model="{model}"}}')
            value = float(result[0]["value"][1]) if result else 0.0
            if value > 0:
                break
            time.sleep(0.5)
        rules = httpx.get(f"{prom}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert value > 0, f"{RATE} stayed at {value}"
    assert value <= 1  # both pages degenerated: the rate is 1, never more
    assert {group["name"] for group in rules} == {"ocrguard.recording", "ocrguard.alerts"}

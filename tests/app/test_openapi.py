"""The OpenAPI document tells the truth: schemathesis (``--checks all``) against the live
server finds no failure, and the document says what each route returns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def test_schemathesis_finds_nothing(serve, random_model):
    with serve(random_model, max_tokens=8) as url:
        result = subprocess.run(
            [
                str(SCHEMATHESIS), "run", f"{url}/openapi.json", "--checks", "all",
                "--max-examples", "25", "--seed", "20261201", "--no-color",
            ],
            cwd=ROOT,  # reads schemathesis.toml
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failure" not in result.stdout.split("SUMMARY")[-1]


def test_the_document_states_media_types_and_errors(serve, random_model):
    with serve(random_model) as url:
        spec = httpx.get(f"{url}/openapi.json").json()
    paths = spec["paths"]
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
    ocr = paths["/v1/ocr"]["post"]["responses"]
    assert "text/event-stream" in ocr["200"]["content"]
    for status in ("401", "413", "415", "422", "503"):
        schema = ocr[status]["content"]["application/json"]["schema"]
        assert schema["$ref"].endswith("/ErrorResponse"), status
    chat = paths["/v1/chat/completions"]["post"]["responses"]
    assert chat["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/OpenAIError")
    feedback = spec["components"]["schemas"]["Feedback"]
    assert len(feedback["anyOf"]) == 4  # an all-null correction is not valid by the schema

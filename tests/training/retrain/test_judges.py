"""Judges: the reference and structural scores, grade parsing, and the LLM judge against a
local server speaking OpenAI's chat format."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from training.retrain.judges import (
    LlmJudge,
    ReferenceJudge,
    StructuralJudge,
    make_judge,
    parse_grade,
)

from ..records import CLEAN, LOOP, LOOPING_JSON, page_png


def test_reference_judge():
    judge = make_judge("reference")
    assert judge.score(CLEAN, reference=CLEAN) == 1.0
    assert judge.score(CLEAN) is None  # no ground truth: abstain
    assert judge.score('{"text": "Recibo"}', reference=CLEAN) < 0.5
    # CER is measured on the fields' text, not on the JSON around it
    assert ReferenceJudge().score('{"text":"Nota fiscal nº 123"}', reference=CLEAN) == 1.0


@pytest.mark.parametrize(
    ("text", "score"),
    [
        (CLEAN, 1.0),
        (LOOPING_JSON, 0.0),  # parses, but the guard trips
        (LOOP, 0.0),  # cut off mid-loop: not the schema
        ('{"header":"","margin":"","footer":"","text":""}', 0.5),  # empty page: implausible
    ],
)
def test_structural_judge(text, score):
    assert StructuralJudge().score(text) == score


@pytest.mark.parametrize(
    ("answer", "grade"),
    [
        ("Score: 7", 7.0),
        ("score=8.5", 8.5),
        ("**9**", 9.0),
        ("I'd give it 6/10.", 6.0),
        ("Score: 12, no wait, 4", 4.0),
        ("nota 7,5", 7.5),
        ("no idea", None),
        ("42", None),
    ],
)
def test_parse_grade(answer, grade):
    assert parse_grade(answer) == grade


class _Judge(BaseHTTPRequestHandler):
    answer = "Score: 8"
    requests: list[dict] = []

    def do_POST(self) -> None:
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        reply = {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self.answer}}]
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def judge_server() -> Iterator[str]:
    _Judge.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_llm_judge_asks_the_endpoint(judge_server, monkeypatch):
    judge = make_judge("llm", llm_url=judge_server, llm_model="grader", llm_api_key="k")
    assert judge.score(CLEAN, image_png=page_png(0)) == pytest.approx(0.8)
    request = _Judge.requests[-1]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer k"
    assert request["body"]["model"] == "grader"
    content = request["body"]["messages"][-1]["content"]
    assert content[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert CLEAN in content[-1]["text"]

    monkeypatch.setattr(_Judge, "answer", "I cannot grade this.")
    assert judge.score(CLEAN) is None


def test_llm_judge_abstains_when_the_endpoint_is_down(judge_server):
    judge = LlmJudge(judge_server.replace("/v1", "/missing"), timeout_seconds=5)
    assert judge.score(CLEAN) is None  # 404
    dead = LlmJudge("http://127.0.0.1:9/v1", timeout_seconds=2)
    assert dead.score(CLEAN) is None

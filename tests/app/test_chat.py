"""The OpenAI-compatible endpoint through the official ``openai`` client over real HTTP, and a
replay of olmOCR's request pattern (its pipeline posts to ``{server}/chat/completions``)."""

from __future__ import annotations

import base64
import time

import httpx
import openai
import pytest

from app.failure_record import FailureRecord
from app.prompt import parse_output

from .. import samples
from ..conftest import LOOP_TEXT
from .test_api import stream_entries

pytestmark = pytest.mark.slow

# A prompt in the style of olmOCR's (our own words): YAML front matter, then the text. It
# comes before the image, as olmOCR sends it, and must reach the model unchanged.
YAML_PROMPT = (
    "Below is the image of one page of a document. Return the plain text of the page as it "
    "would be read, starting with YAML front matter:\n---\nprimary_language: pt\n"
    "is_table: false\n---\n"
)


def image_part(png: bytes | None = None) -> dict:
    data = base64.b64encode(png or samples.png()).decode()
    return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}


def page_messages(png: bytes | None = None, text: str = "Transcreva a página.") -> list[dict]:
    return [{"role": "user", "content": [image_part(png), {"type": "text", "text": text}]}]


def client(url: str, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{url}/v1", api_key=kwargs.pop("key", "none"), max_retries=0, **kwargs
    )


def test_a_page_through_the_official_client(serve, random_model):
    with serve(random_model, max_tokens=12) as url:
        api = client(url)
        [model] = api.models.list().data
        answer = api.chat.completions.create(
            model=model.id, messages=page_messages(), max_tokens=6, logprobs=True
        )
    assert model.id == random_model.name
    choice = answer.choices[0]
    assert choice.finish_reason == "length" and answer.usage.completion_tokens == 6
    assert answer.usage.prompt_tokens > 0
    assert len(choice.logprobs.content) == 6  # the transformers engine gives logprobs
    assert all(item.logprob <= 0 for item in choice.logprobs.content)
    guard = answer.model_extra["guard"]
    assert guard["mode"] == "recover" and guard["tokens_generated"] == 6


def test_streamed_chunks_and_usage(serve, random_model):
    with serve(random_model, max_tokens=12) as url:
        stream = client(url).chat.completions.create(
            model=random_model.name,
            messages=page_messages(),
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text  # content arrived delta by delta
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 8


def test_finish_reasons_follow_the_guard(serve, looping_model, stuck_model):
    with serve(looping_model, max_tokens=200, guard_strategy="rewind") as url:
        api = client(url)
        recovered = api.chat.completions.create(model=looping_model.name, messages=page_messages())
        aborted = api.chat.completions.create(
            model=looping_model.name, messages=page_messages(), extra_body={"guard": "abort"}
        )
        streamed = list(
            api.chat.completions.create(
                model=looping_model.name, messages=page_messages(), stream=True
            )
        )
    assert recovered.choices[0].finish_reason == "stop"
    assert recovered.choices[0].message.content == LOOP_TEXT
    assert recovered.model_extra["guard"]["outcome"] == "recovered"
    assert aborted.choices[0].finish_reason == "repetition"
    assert aborted.model_extra["guard"]["outcome"] == "aborted"
    # streamed text cannot be taken back: the stream stops at the loop
    last = [c for c in streamed if c.choices and c.choices[0].finish_reason][-1]
    assert last.choices[0].finish_reason == "repetition"
    assert last.model_extra["guard"]["mode"] == "abort"
    with serve(stuck_model, max_tokens=100) as url:
        failed = client(url).chat.completions.create(
            model=stuck_model.name, messages=page_messages()
        )
    assert failed.choices[0].finish_reason == "repetition"
    assert failed.model_extra["guard"]["outcome"] == "failed"


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"n": 2}, 400, "n: only 1"),
        ({"messages": [{"role": "user", "content": "no image"}]}, 400, "exactly one image_url"),
        (
            {"messages": [{"role": "user", "content": [image_part(), image_part()]}]},
            400,
            "exactly one image_url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "https://example.com/p.png"}}
                        ],
                    }
                ]
            },
            400,
            "remote URLs are refused",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/png;base64,bm90IGFuIGltYWdl"},
                            }
                        ],
                    }
                ]
            },
            400,
            "not a PNG",
        ),
        ({"model": "gpt-4o"}, 404, "not served here"),
        ({"top_logprobs": 5}, 400, "top_logprobs"),
        ({"max_tokens": 10**6}, 400, "at most"),
    ],
)
def test_bad_requests_get_openai_errors(serve, random_model, change, status, words):
    body = {"model": random_model.name, "messages": page_messages(), "max_tokens": 4, **change}
    with serve(random_model) as url:
        response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
        alive = httpx.get(f"{url}/healthz").status_code
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert words in error["message"] and error["type"] and "code" in error
    assert alive == 200


def test_the_official_client_sees_typed_errors(serve, random_model):
    with serve(random_model, api_keys="k1") as url:
        with pytest.raises(openai.AuthenticationError):
            client(url, key="wrong").models.list()
        with pytest.raises(openai.NotFoundError):
            client(url, key="k1").chat.completions.create(model="nope", messages=page_messages())
        with pytest.raises(openai.BadRequestError):
            client(url, key="k1").chat.completions.create(
                model=random_model.name, messages=page_messages(), n=3
            )


def test_an_olmocr_style_pipeline(serve, stuck_model, redis_client, key_prefix):
    """olmOCR's loop: poll /v1/models until the server answers, post each page (text before
    the image, no stream), and retry at a higher temperature while finish_reason != stop,
    falling back after the last attempt. The prompt reaches the model as sent: the failure
    records keep it, and the records of the retries carry the temperatures the client asked."""
    with serve(stuck_model, max_tokens=120, chat_guard="abort", served_model_name="olmocr") as url:
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/v1/models").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert "olmocr" in {m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]}
        image = image_part()
        reasons = []
        for temperature in (0.1, 0.3, 0.8):
            body = {
                "model": "olmocr",
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": YAML_PROMPT}, image]}
                ],
                "max_tokens": 120,
                "temperature": temperature,
            }
            answer = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120).json()
            reasons.append(answer["choices"][0]["finish_reason"])
            if reasons[-1] == "stop":
                break
    assert reasons == ["repetition"] * 3  # the stuck model never escapes: olmOCR falls back
    records = [
        FailureRecord.from_fields({k.decode(): v.decode() for k, v in fields.items()})
        for _, fields in stream_entries(redis_client, key_prefix)
    ]
    assert [r.sampling["temperature"] for r in records] == [0.1, 0.3, 0.8]
    assert all(r.prompt == YAML_PROMPT and not r.prompt_image_first for r in records)
    assert all(r.prompt_version.startswith("client-") for r in records)


def test_a_clean_page_in_the_embedded_model_s_schema(serve):
    from pathlib import Path

    from app.config import EMBEDDED_MODEL

    line = (Path(__file__).resolve().parents[2] / "examples/line.png").read_bytes()
    with serve(EMBEDDED_MODEL, max_tokens=64) as url:
        from app.prompt import OCR_INSTRUCTION

        answer = client(url).chat.completions.create(
            model="ocrguard-tiny", messages=page_messages(line, OCR_INSTRUCTION)
        )
    assert answer.choices[0].finish_reason == "stop"
    assert parse_output(answer.choices[0].message.content).text == "Gabriela Moura"

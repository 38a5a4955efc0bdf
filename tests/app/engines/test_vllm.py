"""The vLLM adapter against a stand-in ``AsyncLLM``.

vLLM cannot be installed on these CPU machines, so ``FakeAsyncLLM`` below mimics the
interface the adapter uses (``generate`` yielding DELTA ``RequestOutput``s, ``abort``,
``errored``, ``shutdown``) and ``fake_vllm`` stands in for the ``vllm`` module's
``SamplingParams``. The adapter code under test is the real one.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field

import pytest
from PIL import Image

from app.engines.base import GenerationRequest, SamplingOptions
from app.engines.vllm import VllmEngine


@dataclass
class Logprob:
    logprob: float


@dataclass
class Completion:
    token_ids: list[int]
    text: str
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None


@dataclass
class RequestOutput:
    outputs: list[Completion]
    finished: bool


@dataclass
class FakeAsyncLLM:
    steps: list[tuple[int, str]]
    errored: bool = False
    aborted: list[str] = field(default_factory=list)
    calls: list[tuple] = field(default_factory=list)

    async def generate(self, prompt, sampling_params, request_id):
        self.calls.append((prompt, sampling_params, request_id))
        for n, (token, text) in enumerate(self.steps):
            last = n == len(self.steps) - 1
            yield RequestOutput(
                [Completion([token], text, [{token: Logprob(-0.5)}], "length" if last else None)],
                last,
            )

    async def abort(self, request_id):
        self.aborted.append(request_id)

    def shutdown(self):
        pass


class FakeTokenizer:
    def decode(self, ids, skip_special_tokens=True):
        return "".join(f"<{i}>" for i in ids)


class FakeProcessor:
    tokenizer = FakeTokenizer()

    def apply_chat_template(self, messages, add_generation_prompt=True):
        return "PROMPT:"


fake_vllm = types.SimpleNamespace(
    SamplingParams=lambda **kw: kw,
    sampling_params=types.SimpleNamespace(RequestOutputKind=types.SimpleNamespace(DELTA="DELTA")),
)


def engine(llm):
    return VllmEngine(llm, FakeTokenizer(), FakeProcessor(), "m", "r", 2, fake_vllm)


def request(**kw):
    return GenerationRequest(
        "req-1", Image.new("RGB", (4, 4)), "ocr", SamplingOptions(max_tokens=9), **kw
    )


async def test_streams_deltas_with_logprobs_and_finish_reason():
    llm = FakeAsyncLLM([(1, "a"), (2, "b"), (3, "c")])
    deltas = [d async for d in engine(llm).generate(request())]
    assert [d.token_ids for d in deltas] == [(1,), (2,), (3,)]
    assert "".join(d.text for d in deltas) == "abc"
    assert deltas[0].logprobs == (-0.5,)
    assert [d.finish_reason for d in deltas] == [None, None, "length"]
    prompt, params, request_id = llm.calls[0]
    assert prompt["multi_modal_data"]["image"].size == (4, 4)
    assert params["output_kind"] == "DELTA" and params["max_tokens"] == 9
    assert llm.aborted == []


async def test_closing_the_stream_early_aborts_the_request():
    llm = FakeAsyncLLM([(1, "a"), (2, "b"), (3, "c")])
    stream = engine(llm).generate(request())
    await stream.__anext__()
    await stream.aclose()  # what the guard does when it trips
    assert llm.aborted == ["req-1"]


async def test_dead_engine_is_not_aborted():
    llm = FakeAsyncLLM([(1, "a"), (2, "b")], errored=True)
    stream = engine(llm).generate(request())
    await stream.__anext__()
    await stream.aclose()
    assert llm.aborted == []


async def test_resume_puts_the_prefix_in_the_prompt_and_bans_the_loop():
    llm = FakeAsyncLLM([(4, "d")])
    [_] = [
        d
        async for d in engine(llm).generate(
            request(prefix_token_ids=(7, 8), banned_sequences=((7, 8),))
        )
    ]
    prompt, params, _ = llm.calls[0]
    assert prompt["prompt"] == "PROMPT:<7><8>"
    assert params["bad_words"] == ["<7><8>"]


async def test_failure_becomes_an_engine_error():
    from app.engines.base import EngineError

    class Broken(FakeAsyncLLM):
        async def generate(self, prompt, sampling_params, request_id):
            raise RuntimeError("CUDA error")
            yield  # pragma: no cover

    with pytest.raises(EngineError):
        [d async for d in engine(Broken([])).generate(request())]

"""A small OpenAI-compatible server for the upstream engine's tests: real HTTP, scripted
answers, no logprobs and no token ids (what llama.cpp, Ollama or a proxy may send).

The model name picks the behaviour: ``loop`` streams a loop until ``max_tokens`` words,
``clean`` a short JSON answer, ``thrice`` a JSON answer that writes one line three times and
stops (no line break after the last copy), ``reject`` answers 400, ``slow`` stalls after one
chunk.
Every request body is kept in ``requests`` for the tests to read.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

MODELS = ("loop", "clean", "thrice", "reject", "slow")
LOOP_WORDS = ["Nota", " São", " Prefei", " 123"]
CLEAN = '{"header": "", "margin": "", "footer": "", "text": "Olá mundo"}'
LINE = "I - tiver cancelada sua naturalização, por sentença judicial"
THRICE = '{"header": "", "margin": "", "footer": "", "text": "' + "\\n".join([LINE] * 3) + '"}'


def build_stub() -> FastAPI:
    app = FastAPI()
    app.state.requests = []

    @app.get("/v1/models")
    async def models() -> dict:
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "owned_by": "stub"} for m in MODELS],
        }

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        app.state.requests.append(body)
        model = body["model"]
        if model == "reject":
            return JSONResponse(
                {"error": {"message": "the image is too small", "type": "invalid_request_error"}},
                400,
            )
        return StreamingResponse(
            _stream(model, int(body.get("max_tokens", 16))), media_type="text/event-stream"
        )

    return app


def _chunk(text: str, finish: str | None = None) -> str:
    choice = {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
    return f"data: {json.dumps({'object': 'chat.completion.chunk', 'choices': [choice]})}\n\n"


async def _stream(model: str, max_tokens: int):
    if model in ("clean", "thrice"):
        answer = CLEAN if model == "clean" else THRICE
        for n in range(0, len(answer), 6):
            yield _chunk(answer[n : n + 6])
        yield _chunk("", "stop")
    elif model == "slow":
        yield _chunk("Nota")
        await asyncio.sleep(30)
    else:
        for n in range(max_tokens):
            yield _chunk(LOOP_WORDS[n % len(LOOP_WORDS)])
            await asyncio.sleep(0)
        yield _chunk("", "length")
    yield "data: [DONE]\n\n"

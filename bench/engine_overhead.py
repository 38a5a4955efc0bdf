"""What the guard and the upstream hop cost on real vLLM (issue #23), side by side in one run.

    .venv/bin/python bench/engine_overhead.py            # ~5 min on 2 cores
    .venv/bin/python bench/engine_overhead.py --pages 12 --repeat 3

1. **The vLLM engine with the guard on and off**: the same held-out prose pages (which do not
   loop, so both runs generate the same tokens) through ``VllmEngine`` in-process, with
   ``guard=off`` and ``guard=detect`` taking turns page by page; tokens/s of each over
   ``--repeat`` passes, and the guard's own time per token measured inside the runs.
2. **The upstream engine against calling vLLM directly**: vLLM's own OpenAI server on the
   embedded model; each page is sent once straight to its ``/v1/chat/completions`` (the body
   ocrguard's upstream engine sends: the same messages and sampling) and once through ocrguard
   (``OCRGUARD_ENGINE=openai``, ``POST /v1/ocr`` streamed), taking turns; time to first token
   and total time, added latency per request and per generated token (medians). The server
   runs without prefix caching and without its multimodal processor cache, so that the
   second path does not reuse the first one's work on the same page.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from app.config import EMBEDDED_MODEL, Settings  # noqa: E402
from app.engines.openai import chat_messages  # noqa: E402
from app.engines.vllm import VllmEngine  # noqa: E402
from app.guard import DEFAULT_CONFIG, LoopDetector  # noqa: E402
from app.guard.recovery import RecoveryConfig  # noqa: E402
from app.images import Page  # noqa: E402
from app.prompt import PagePrompt  # noqa: E402
from app.server import background_server  # noqa: E402
from app.transcriber import PageJob, PageRun, Transcriber  # noqa: E402
from tests.vllm_server import vllm_server  # noqa: E402
from training.evaluation.heldout import EVAL_SEED  # noqa: E402
from training.model.synth import Generator  # noqa: E402


def pages(count: int):
    generator = Generator(EVAL_SEED)
    return [generator.sample(i, "block").image for i in range(count)]


async def guard_on_off(images, repeat: int) -> tuple[float, float, int, float]:
    """Tokens/s with the guard off and on, page by page in alternating order (so that the
    machine's drift falls on both), and the guard's own time per token inside the runs."""
    engine = VllmEngine.from_settings(Settings(engine="vllm", vllm_kv_cache_bytes=256 << 20))
    transcriber = Transcriber(engine, DEFAULT_CONFIG, RecoveryConfig())
    seconds = {"off": 0.0, "detect": 0.0}
    tokens = {"off": 0, "detect": 0}
    guard_seconds = [0.0]
    feed = LoopDetector.feed

    def timed_feed(self, *args):
        started = time.perf_counter()
        try:
            return feed(self, *args)
        finally:
            guard_seconds[0] += time.perf_counter() - started

    LoopDetector.feed = timed_feed  # type: ignore[method-assign]
    try:
        await _one_pass(transcriber, images, "off")  # warm-up, not counted
        for r in range(repeat):
            for n, image in enumerate(images):
                order = ("off", "detect") if (n + r) % 2 == 0 else ("detect", "off")
                for mode in order:
                    started = time.perf_counter()
                    tokens[mode] += await _one_pass(transcriber, [image], mode)
                    seconds[mode] += time.perf_counter() - started
    finally:
        LoopDetector.feed = feed  # type: ignore[method-assign]
    await engine.close()
    return (
        tokens["off"] / seconds["off"],
        tokens["detect"] / seconds["detect"],
        tokens["detect"] // repeat,
        guard_seconds[0] / max(1, tokens["detect"]),
    )


async def _one_pass(transcriber, images, mode: str) -> int:
    generated = 0
    for n, image in enumerate(images):
        run = PageRun()
        job = PageJob(f"{mode}-{n}-{time.monotonic_ns()}", Page(1, image), PagePrompt(), 256, mode)
        async for _ in transcriber.run(job, run):
            pass
        generated += run.generated
    return generated


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def direct(base: str, png: bytes) -> tuple[float, float, int, str]:
    """(seconds to the first token, total seconds, tokens, text) straight from vLLM."""
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    messages = chat_messages(PagePrompt(), url)  # what app/engines/openai.py sends
    body = {
        "model": "ocrguard-tiny",
        "messages": messages,
        "stream": True,
        "max_tokens": 256,
        "temperature": 0.0,
        "top_p": 1.0,
        "logprobs": True,
        "top_logprobs": 0,
        "stream_options": {"include_usage": True},
        "return_token_ids": True,
        "skip_special_tokens": True,
    }
    started, first, tokens, text = time.perf_counter(), None, 0, []
    with httpx.stream("POST", f"{base}/chat/completions", json=body, timeout=120) as r:
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in json.loads(line[6:]).get("choices", []):
                if choice.get("token_ids"):
                    tokens += len(choice["token_ids"])
                    first = first or time.perf_counter()
                text.append((choice.get("delta") or {}).get("content") or "")
    return first - started, time.perf_counter() - started, tokens, "".join(text)


def through_ocrguard(url: str, png: bytes) -> tuple[float, float, int, str]:
    started, first, body = time.perf_counter(), None, None
    files = {"file": ("p.png", png)}
    data = {"stream": "true", "guard": "recover", "max_tokens": "256"}
    with httpx.stream("POST", f"{url}/v1/ocr", files=files, data=data, timeout=120) as r:
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                if event == "delta":
                    first = first or time.perf_counter()
                elif event == "result":
                    body = json.loads(line[6:])
    page = body["pages"][0]
    return (
        first - started,
        time.perf_counter() - started,
        body["usage"]["generated_tokens"],
        page["raw_text"],
    )


def upstream_latency(images, port: int) -> list[tuple[tuple, tuple]]:
    log = Path("/tmp/ocrguard-bench-vllm.log")
    pngs = [_png(image) for image in images]
    no_caches = ["--no-enable-prefix-caching", "--mm-processor-cache-gb", "0"]
    with vllm_server(EMBEDDED_MODEL, port, "ocrguard-tiny", log, no_caches) as base:
        settings = Settings(
            engine="openai",
            upstream_url=base,
            upstream_tokenizer=str(EMBEDDED_MODEL),
            key_prefix="ocrguard-bench:",
            stream_key="ocrguard-bench:failures",
        )
        with background_server(settings) as url:
            direct(base, pngs[0]), through_ocrguard(url, pngs[0])  # warm both paths
            return [(direct(base, png), through_ocrguard(url, png)) for png in pngs]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--port", type=int, default=8771)
    args = parser.parse_args()
    images = pages(args.pages)

    off, on, tokens, guard_per_token = asyncio.run(guard_on_off(images, args.repeat))
    print(
        f"1. vLLM engine (in-process, CPU), {args.pages} held-out prose pages, "
        f"{tokens} tokens a pass, {args.repeat} passes, page by page in alternating order\n"
    )
    print("| guard | tokens/s |\n|---|---|")
    print(f"| off | {off:.1f} |\n| detect (every token through the guard) | {on:.1f} |")
    print(
        f"\nratio off / on: **{off / on:.3f}**; the guard itself: "
        f"{guard_per_token * 1e6:.1f} µs a token inside those runs, "
        f"{guard_per_token * on * 100:.2f} % of the detect run's time\n"
    )

    pairs = upstream_latency(images, args.port)
    med = lambda xs: statistics.median(xs)  # noqa: E731
    d_first, d_total = med([d[0] for d, _ in pairs]), med([d[1] for d, _ in pairs])
    o_first, o_total = med([o[0] for _, o in pairs]), med([o[1] for _, o in pairs])
    added = [o[1] - d[1] for d, o in pairs]  # paired: each page both ways
    per_token = med([(o[1] - d[1]) / max(1, d[2]) for d, o in pairs])
    same = sum(d[3] == o[3] for d, o in pairs)
    print(
        f"2. upstream engine vs vLLM's OpenAI server directly, {len(pairs)} pages, medians "
        f"({same} of {len(pairs)} pages came back with the same text both ways; vLLM's token "
        "count includes the end-of-turn token, ocrguard's does not)\n"
    )
    print("| path | first token (s) | total (s) |\n|---|---|---|")
    print(f"| vLLM directly | {d_first:.3f} | {d_total:.3f} |")
    print(f"| through ocrguard (openai engine) | {o_first:.3f} | {o_total:.3f} |")
    print(
        f"\nadded per request (median of the per-page differences): {med(added):+.3f} s "
        f"(first token {med([o[0] - d[0] for d, o in pairs]):+.3f} s); "
        f"added per generated token: {per_token * 1000:+.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

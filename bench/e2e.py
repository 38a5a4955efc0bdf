"""End-to-end cost of the guard in the service, on the CPU transformers engine, over HTTP.

    .venv/bin/python bench/e2e.py                 # ~5 minutes on 2 cores
    .venv/bin/python bench/e2e.py --pages 100 --looping 3 --max-tokens 600

Models: two scripted Qwen2.5-VL networks of the embedded model's size (tests/scripted.py):
one answers every page with the same clean 120-token transcription, the other loops on a
4-token unit until max_tokens. For the batch, the bench decides which pages loop (a red
dot in the corner routes a page to the looping model: 3 of 100, the published production
rate of 2.42% rounded up); everything else is the real service: HTTP, guard, abort,
recovery, Redis failure log, metrics.

Measured side by side in one run:
1. clean pages, guard off vs recover, interleaved, sequential: median latency ratio;
2. clean pages, 4 concurrent clients: pages/s with the guard off and on;
3. overhead of the service outside the model: median HTTP latency minus median direct
   engine time for the same page;
4. a 100-page batch with 4 concurrent clients, guard off / abort / recover, and the same
   batch with no looping page: wall-clock inflation and tokens spent on looping pages.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from app.config import Settings  # noqa: E402
from app.engines.base import GenerationRequest, SamplingOptions  # noqa: E402
from app.engines.transformers import TransformersEngine  # noqa: E402
from app.prompt import PagePrompt  # noqa: E402
from app.server import background_server  # noqa: E402
from tests.scripted import END, chain, cycle, save_scripted_model, vocabulary  # noqa: E402
from training.model.architecture import ModelSize  # noqa: E402

LOOP_MARK = (255, 0, 0)


class RoutingEngine:
    """Sends pages marked with a red corner pixel to the looping model (bench only)."""

    def __init__(self, clean: TransformersEngine, looping: TransformersEngine) -> None:
        self.clean, self.looping = clean, looping
        self.model_id, self.revision = "scripted-mix", "bench"
        self.max_concurrency = clean.max_concurrency

    @property
    def ready(self) -> bool:
        return True

    def _pick(self, request: GenerationRequest) -> TransformersEngine:
        return self.looping if request.image.getpixel((0, 0)) == LOOP_MARK else self.clean

    def generate(self, request: GenerationRequest):
        return self._pick(request).generate(request)

    async def abort(self, request_id: str) -> None:
        await self.clean.abort(request_id)
        await self.looping.abort(request_id)

    def decode(self, token_ids) -> str:
        return self.clean.decode(token_ids)

    can_resume = True

    async def start(self) -> None:
        pass

    def metrics(self) -> bytes:
        return b""

    async def close(self) -> None:
        await self.clean.close()
        await self.looping.close()


def page_png(n: int, looping: bool) -> bytes:
    import io

    image = Image.new("RGB", (320, 96), "white")
    ImageDraw.Draw(image).text((8, 40), f"Página {n} do lote", fill="black")
    if looping:
        image.putpixel((0, 0), LOOP_MARK)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def post(url: str, png: bytes, guard: str, max_tokens: int) -> tuple[float, dict]:
    start = time.perf_counter()
    response = httpx.post(
        f"{url}/v1/ocr",
        files={"file": ("p.png", png)},
        data={"guard": guard, "max_tokens": str(max_tokens)},
        timeout=600,
    )
    response.raise_for_status()
    return time.perf_counter() - start, response.json()


def batch(
    url: str, pngs: list[bytes], guard: str, max_tokens: int, clients: int
) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        bodies = list(pool.map(lambda p: post(url, p, guard, max_tokens)[1], pngs))
    return time.perf_counter() - start, bodies


def direct_engine_seconds(
    engine: TransformersEngine, png: bytes, max_tokens: int, runs: int
) -> float:
    import io

    from app.images import load_pages

    [page] = load_pages(
        png, max_image_pixels=50_000_000, model_max_pixels=448 * 448, max_pdf_pages=1
    )
    _ = io

    async def once() -> float:
        request = GenerationRequest(
            uuid.uuid4().hex, page.image, PagePrompt("x"), SamplingOptions(max_tokens=max_tokens)
        )
        start = time.perf_counter()
        async for _ in engine.generate(request):
            pass
        return time.perf_counter() - start

    loop = asyncio.new_event_loop()
    try:
        return statistics.median(loop.run_until_complete(once()) for _ in range(runs))
    finally:
        loop.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--looping", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=600)
    parser.add_argument("--answer-tokens", type=int, default=120)
    parser.add_argument("--latency-runs", type=int, default=15)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    size = ModelSize()  # the embedded model's dimensions
    words = vocabulary()
    tmp = Path(tempfile.mkdtemp(prefix="ocrguard-e2e-"))
    clean_path = save_scripted_model(tmp / "clean", chain(words[: args.answer_tokens]), size=size)
    loop_path = save_scripted_model(
        tmp / "loop", cycle(words[200:204]), {words[203]: END}, size=size
    )
    clean = TransformersEngine(clean_path, max_concurrency=2)
    looping = TransformersEngine(loop_path, max_concurrency=2)
    engine = RoutingEngine(clean, looping)
    settings = Settings(
        model=str(clean_path),
        max_tokens=args.max_tokens,
        max_concurrency=2,
        max_queue=64,
        key_prefix=f"ocrguard-bench:{uuid.uuid4().hex[:8]}:",
        stream_key=f"ocrguard-bench:{uuid.uuid4().hex[:8]}:failures",
    )
    print(
        f"models: scripted Qwen2.5-VL {size.text_layers}x{size.text_hidden} text / {size.vision_depth}x"
        f"{size.vision_hidden} vision; clean answer {args.answer_tokens} tokens; max_tokens {args.max_tokens}\n"
    )
    with background_server(settings, engine=engine) as url:
        png = page_png(0, looping=False)
        post(url, png, "off", args.max_tokens)  # warm-up
        # 1. interleaved latency, guard off vs recover
        latencies = {"off": [], "recover": []}
        for n in range(args.latency_runs):
            for guard in ("off", "recover") if n % 2 == 0 else ("recover", "off"):
                latencies[guard].append(post(url, png, guard, args.max_tokens)[0])
        off, on = statistics.median(latencies["off"]), statistics.median(latencies["recover"])
        # 3. overhead outside the model
        engine_s = direct_engine_seconds(clean, png, args.max_tokens, args.latency_runs)
        # 2. throughput with concurrent clients
        pngs = [page_png(n, False) for n in range(24)]
        t_off, _ = batch(url, pngs, "off", args.max_tokens, args.clients)
        t_on, _ = batch(url, pngs, "recover", args.max_tokens, args.clients)
        print("| clean pages | guard off | guard recover | ratio on/off |")
        print("|---|---|---|---|")
        print(
            f"| median latency, sequential ({args.latency_runs} each, interleaved) | {off * 1000:.1f} ms | "
            f"{on * 1000:.1f} ms | {on / off:.3f} |"
        )
        print(
            f"| throughput, {args.clients} clients, {len(pngs)} pages | {len(pngs) / t_off:.2f} pages/s | "
            f"{len(pngs) / t_on:.2f} pages/s | {t_on / t_off:.3f} (time) |"
        )
        print(
            f"\nservice overhead outside the model: {(off - engine_s) * 1000:.1f} ms per request "
            f"(HTTP median {off * 1000:.1f} ms - direct engine median {engine_s * 1000:.1f} ms)\n"
        )
        # 4. the batch
        loop_every = max(1, args.pages // max(1, args.looping))
        marks = [
            args.looping and n % loop_every == loop_every // 2 and n // loop_every < args.looping
            for n in range(args.pages)
        ]
        mixed = [page_png(n, bool(m)) for n, m in enumerate(marks)]
        all_clean = [page_png(n, False) for n in range(args.pages)]
        base_wall, base_bodies = batch(url, all_clean, "off", args.max_tokens, args.clients)
        base_tokens = sum(b["usage"]["generated_tokens"] for b in base_bodies)
        print(
            f"| batch of {args.pages} pages, {sum(marks)} looping, {args.clients} clients | wall-clock | "
            "inflation vs no-loop batch | tokens, all pages | tokens on looping pages | "
            "looping pages: tokens saved vs off | looping pages returned |"
        )
        print("|---|---|---|---|---|---|---|")
        print(f"| no looping page (baseline) | {base_wall:.1f} s | - | {base_tokens} | - | - | - |")
        loop_tokens_off = None
        for guard in ("off", "abort", "recover"):
            wall, bodies = batch(url, mixed, guard, args.max_tokens, args.clients)
            tokens = sum(b["usage"]["generated_tokens"] for b in bodies)
            loop_bodies = [b for b, m in zip(bodies, marks) if m]
            loop_tokens = sum(b["usage"]["generated_tokens"] for b in loop_bodies)
            if guard == "off":
                loop_tokens_off = loop_tokens
            saved = "-" if guard == "off" else f"{1 - loop_tokens / loop_tokens_off:.1%}"
            actions = ",".join(sorted({b["pages"][0]["guard"]["outcome"] for b in loop_bodies}))
            print(
                f"| guard {guard} | {wall:.1f} s | {wall / base_wall - 1:+.1%} | {tokens} | {loop_tokens} | "
                f"{saved} | {actions} |"
            )
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())

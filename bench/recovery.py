"""Rewind-and-resume against plain retry, on the pages where the embedded model loops.

    .venv/bin/python bench/recovery.py --model models/ocrguard-tiny --pages 60

For held-out synthetic pages (training/model/synth.py, the evaluation seed) the model is run
with the guard off; the pages whose greedy output loops are then transcribed again under
``guard=recover`` with each strategy (same engine, same guard, same temperature ladder).
Reported per strategy: pages recovered (a clean attempt), tokens spent, and character
error rate of what the service would return, against the ground truth.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import EMBEDDED_MODEL  # noqa: E402
from app.engines.transformers import TransformersEngine  # noqa: E402
from app.guard import DEFAULT_CONFIG  # noqa: E402
from app.guard.recovery import RecoveryConfig  # noqa: E402
from app.images import Page  # noqa: E402
from app.prompt import PagePrompt, parse_output  # noqa: E402
from app.transcriber import PageJob, PageRun, Transcriber  # noqa: E402
from training.evaluation.cer import cer  # noqa: E402
from training.evaluation.heldout import EVAL_SEED  # noqa: E402
from training.model.synth import Generator  # noqa: E402


async def transcribe(transcriber: Transcriber, image, mode: str, max_tokens: int) -> PageRun:
    run = PageRun([])
    job = PageJob("bench", Page(1, image), PagePrompt(), max_tokens, mode)
    async for _ in transcriber.run(job, run):
        pass
    return run


def returned_cer(run: PageRun, reference: str) -> float:
    fields = parse_output(run.result.raw_text)
    return cer(fields.transcription if fields else run.result.raw_text, reference)


async def main_async(args) -> int:
    engine = TransformersEngine(args.model)
    generator = Generator(EVAL_SEED)
    kinds = args.kinds.split(",")
    off = Transcriber(engine, DEFAULT_CONFIG, RecoveryConfig())
    looping = []
    for i in range(args.pages):
        sample = generator.sample(i, kinds[i % len(kinds)])
        run = await transcribe(off, sample.image, "detect", args.max_tokens)
        if run.result.guard.tripped:
            looping.append((sample, run))
    print(
        f"model {args.model}: {len(looping)} of {args.pages} pages loop under greedy decoding "
        f"(kinds {args.kinds}, max_tokens {args.max_tokens})\n"
    )
    if not looping:
        return 0
    print(
        "| strategy | pages recovered | tokens spent (mean) | CER of returned text (mean) | attempts (mean) |"
    )
    print("|---|---|---|---|---|")
    base_tokens = statistics.mean(r.result.guard.tokens_generated for _, r in looping)
    base_cer = statistics.mean(returned_cer(r, s.fields.transcription) for s, r in looping)
    print(
        f"| guard off (runs until it stops or hits max_tokens) | 0 | {base_tokens:.0f} | {base_cer:.3f} | 1 |"
    )
    for strategy in ("rewind", "retry"):
        transcriber = Transcriber(engine, DEFAULT_CONFIG, RecoveryConfig(strategy=strategy))
        runs = [
            (s, await transcribe(transcriber, s.image, "recover", args.max_tokens))
            for s, _ in looping
        ]
        recovered = sum(r.result.guard.outcome == "recovered" for _, r in runs)
        tokens = statistics.mean(r.result.guard.tokens_generated for _, r in runs)
        error = statistics.mean(returned_cer(r, s.fields.transcription) for s, r in runs)
        attempts = statistics.mean(len(r.history) for _, r in runs)
        print(
            f"| {strategy} | {recovered}/{len(runs)} | {tokens:.0f} | {error:.3f} | {attempts:.2f} |"
        )
    await engine.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=str(EMBEDDED_MODEL))
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--kinds", default="table,receipt,form,block")
    parser.add_argument("--max-tokens", type=int, default=400)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())

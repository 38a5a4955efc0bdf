"""Does the evidence beyond the text separate loops from legitimate repetition? Measured on the
embedded model's own outputs before the guard relies on it (issue #25).

    .venv/bin/python bench/guard_evidence.py --pages 40

Two sets, decoded greedily by the transformers engine with logprobs (guard=detect, so every
output runs its course):
- **legitimate**: held-out synthetic receipts whose items repeat (2-4 identical lines), which
  the model reads correctly;
- **loops**: held-out degeneration-prone pages (ruled, noise, empty tables, long receipts,
  forms) on which the text-only guard trips.

For every line the output writes more than once: the mean token probability of each copy
(the DPO work's attractor: a loop's copies grow ever more certain, a repeated item read off
the page keeps the confidence of reading). And per page: the lines the image holds
(app/page_lines.py) against the lines the output writes.
"""

from __future__ import annotations

import argparse
import asyncio
import math
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
from app.page_lines import count_text_lines  # noqa: E402
from app.prompt import PagePrompt  # noqa: E402
from app.transcriber import PageJob, PageRun, Transcriber  # noqa: E402
from training.evaluation.heldout import EVAL_SEED  # noqa: E402
from training.model.synth import Generator  # noqa: E402
from training.retrain.traffic import Traffic  # noqa: E402

LOOPING_KINDS = ("ruled", "noise", "empty_table", "long_receipt", "form_page")


async def decode(engine, transcriber, image, n: int):
    run = PageRun()
    job = PageJob(
        f"evidence-{n}", Page(1, image, count_text_lines(image)), PagePrompt(), 256, "detect"
    )
    async for _ in transcriber.run(job, run):
        pass
    return run


def copies(engine, run) -> list[list[float]]:
    """Mean probability of each copy of every line written more than once."""
    attempt = run.history[0]
    ids, logprobs = attempt.token_ids, attempt.logprobs
    text, spans, line_start = "", [], 0
    lines: dict[str, list[float]] = {}
    for n in range(len(ids)):
        text = engine.decode(ids[: n + 1])
        while "\\n" in text[line_start:] or "\n" in text[line_start:]:
            cut = min(
                i for i in (text.find("\\n", line_start), text.find("\n", line_start)) if i >= 0
            )
            line = text[line_start:cut].strip()
            spans.append((line, n))
            line_start = cut + (2 if text.startswith("\\n", cut) else 1)
    previous = 0
    for line, end in spans:
        probs = [math.exp(lp) for lp in logprobs[previous : end + 1] if lp is not None]
        previous = end + 1
        if line and probs:
            lines.setdefault(line, []).append(statistics.mean(probs))
    return [c for c in lines.values() if len(c) >= 2]


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    q = statistics.quantiles(values, n=10) if len(values) >= 2 else [values[0]] * 9
    return f"p10 {q[0]:.3f} · median {statistics.median(values):.3f} · p90 {q[-1]:.3f} (n={len(values)})"


async def main_async(pages: int) -> None:
    engine = TransformersEngine(EMBEDDED_MODEL)
    transcriber = Transcriber(engine, DEFAULT_CONFIG, RecoveryConfig(max_attempts=1))
    legit, loops = [], []
    generator = Generator(EVAL_SEED)
    for i in range(pages * 3):
        sample = generator.sample(i, "receipt")
        if len(legit) >= pages:
            break
        run = await decode(engine, transcriber, sample.image, i)
        if run.result and run.result.text == sample.fields.text:  # read correctly
            legit.append((sample, run))
    traffic = Traffic("heldout")
    for i in range(pages * 8):
        if len(loops) >= pages:
            break
        sample = traffic.sample(i, LOOPING_KINDS[i % len(LOOPING_KINDS)])
        run = await decode(engine, transcriber, sample.image, 10_000 + i)
        if run.history[0].verdict is not None:
            loops.append((sample, run))
    await engine.close()
    print(
        f"embedded model, greedy; {len(legit)} legitimate receipts read exactly, {len(loops)} looping prone pages\n"
    )
    print("| set | first copy | second copy | later copies | rise 1st→last (median) |")
    print("|---|---|---|---|---|")
    for name, runs in (("legitimate repeated items", legit), ("loops", loops)):
        found = [c for _, run in runs for c in copies(engine, run)]
        first = [c[0] for c in found]
        second = [c[1] for c in found]
        later = [p for c in found for p in c[2:]]
        rise = [c[-1] - c[0] for c in found]
        median_rise = f"{statistics.median(rise):+.3f}" if rise else "n/a"
        print(
            f"| {name} | {summary(first)} | {summary(second)} | {summary(later)} | {median_rise} |"
        )
    print("\n| set | page lines (image) | lines written | written / page (median) |")
    print("|---|---|---|---|")
    for name, runs in (("legitimate repeated items", legit), ("loops", loops)):
        held = [count_text_lines(s.image) for s, _ in runs]
        written = [max(1, r.result.raw_text.count("\\n") + 1) for _, r in runs]
        ratios = [w / max(1, h) for w, h in zip(written, held)]
        print(
            f"| {name} | {summary(held)} | {summary(written)} | {statistics.median(ratios):.2f} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=40)
    asyncio.run(main_async(parser.parse_args().pages))
    return 0


if __name__ == "__main__":
    sys.exit(main())

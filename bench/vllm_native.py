"""vLLM's own ``repetition_detection`` against the ocrguard guard, on one vLLM engine and the
same pages (issue #23).

    .venv/bin/python bench/vllm_native.py                     # ~25 min on 2 cores
    .venv/bin/python bench/vllm_native.py --pages 30 --max-tokens 512

Pages, both sets decided by a plain greedy run of the embedded model on vLLM (no check):
- **looping**: held-out degeneration-prone traffic pages (training/retrain/traffic.py, of the
  kinds the model degenerates on) whose plain output runs to ``--max-tokens``: the model
  loops on them until the limit;
- **legitimate**: pages with legitimately repeated lines that the plain run reads well
  (CER <= 0.1, ends by itself): the committed receipt example (four identical items) and
  held-out synthetic receipts and tables with repeated values.

For each detector: loops caught (stopped before the limit), legitimate pages cut short
(stopped by the check, returning less than the plain run), tokens generated, and the CER of
what is returned (a loop's returned text is compared with the page's ground truth).
vLLM's rule stops a request once its last ``max_pattern_size``-or-shorter n-gram repeats
``min_count`` times back to back (``SamplingParams.repetition_detection``); ocrguard runs
with ``guard=abort`` (return the text before the loop) on the same engine.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from app.config import Settings  # noqa: E402
from app.engines.vllm import VllmEngine  # noqa: E402
from app.guard import DEFAULT_CONFIG  # noqa: E402
from app.guard.recovery import RecoveryConfig  # noqa: E402
from app.images import Page  # noqa: E402
from app.prompt import PageFields, PagePrompt, transcription_of  # noqa: E402
from app.transcriber import PageJob, PageRun, Transcriber  # noqa: E402
from training.evaluation.cer import cer  # noqa: E402
from training.evaluation.heldout import EVAL_SEED  # noqa: E402
from training.model.synth import Generator  # noqa: E402
from training.retrain.traffic import Traffic  # noqa: E402

PEER_SETTINGS = [(16, 3), (32, 4), (64, 8)]  # (max_pattern_size, min_count)


@dataclass
class Case:
    name: str
    image: Image.Image
    truth: str
    plain_text: str = ""
    plain_tokens: int = 0


@dataclass
class Tally:
    caught: int = 0
    cut_short: int = 0
    tokens: int = 0
    cer: list[float] = field(default_factory=list)


class Peer(VllmEngine):
    """The same engine with vLLM's repetition_detection on every request (bench only)."""

    rule: tuple[int, int] | None = None

    def _sampling_params(self, request):
        params = super()._sampling_params(request)
        if self.rule is not None:
            from vllm.sampling_params import RepetitionDetectionParams

            size, count = self.rule
            params.repetition_detection = RepetitionDetectionParams(
                max_pattern_size=size, min_count=count
            )
        return params


async def run(engine: Peer, case: Case, max_tokens: int, mode: str) -> tuple[str, int, bool]:
    """(returned text, tokens generated, stopped early by a check)."""
    transcriber = Transcriber(engine, DEFAULT_CONFIG, RecoveryConfig(max_attempts=1))
    job = PageJob(
        f"bench-{time.monotonic_ns()}", Page(1, case.image), PagePrompt(), max_tokens, mode
    )
    run = PageRun()
    async for _ in transcriber.run(job, run):
        pass
    result = run.result
    assert result is not None
    stopped = result.finish_reason in ("repetition", "abort")
    return result.raw_text, result.guard.tokens_generated, stopped


# The prone kinds the embedded model degenerates on (training eval --prone, held-out split).
LOOPING_KINDS = ("ruled", "noise", "empty_table", "long_receipt", "form_page")


def pages(count: int, pool: int) -> tuple[list[Case], list[Case]]:
    traffic = Traffic("heldout")
    prone = [traffic.sample(i, LOOPING_KINDS[i % len(LOOPING_KINDS)]) for i in range(pool)]
    looping = [Case(f"{s.kind}#{n}", s.image, s.fields.transcription) for n, s in enumerate(prone)]
    receipt = Image.open(ROOT / "examples/receipt.png").convert("RGB")
    truth = PageFields(
        header="Freitas",
        footer="OBRIGADO PELA PREFERÊNCIA",
        text="\n".join(["1 UN AGUA 3,50"] * 4 + ["TOTAL R$ 95,00"]),
    ).transcription
    legit = [Case("examples/receipt.png", receipt, truth)]
    generator = Generator(EVAL_SEED)
    for i in range(count * 3):
        sample = generator.sample(i, "receipt" if i % 2 else "table")
        lines = sample.fields.text.split("\n")
        if len(lines) - len(set(lines)) >= 2:  # at least three copies of a line, or two pairs
            legit.append(Case(f"{sample.kind}#{i}", sample.image, sample.fields.transcription))
    return looping, legit


async def main_async(args) -> None:
    settings = Settings(engine="vllm", max_concurrency=1, vllm_kv_cache_bytes=512 << 20)
    engine = Peer.from_settings(settings)
    looping, legit = pages(args.pages, args.pool)
    for case in looping + legit:  # the plain run decides which set a page belongs to
        text, tokens, _ = await run(engine, case, args.max_tokens, "off")
        case.plain_text, case.plain_tokens = text, tokens
    looping = [c for c in looping if c.plain_tokens >= args.max_tokens][: args.pages]
    legit = [
        c
        for c in legit
        if c.plain_tokens < args.max_tokens and cer(transcription_of(c.plain_text), c.truth) <= 0.1
    ][: args.pages]
    detectors = [("none", None, "off")]
    detectors += [(f"vLLM repetition_detection({s}, {c})", (s, c), "off") for s, c in PEER_SETTINGS]
    detectors.append((f"ocrguard {DEFAULT_CONFIG.version} (guard=abort)", None, "abort"))
    rows = []
    for name, rule, mode in detectors:
        engine.rule = rule
        tallies = {"looping": Tally(), "legit": Tally()}
        for set_name, cases in (("looping", looping), ("legit", legit)):
            tally = tallies[set_name]
            for case in cases:
                text, tokens, stopped = await run(engine, case, args.max_tokens, mode)
                tally.tokens += tokens
                tally.cer.append(cer(transcription_of(text), case.truth))
                if set_name == "looping":
                    tally.caught += tokens < args.max_tokens
                else:
                    tally.cut_short += stopped and len(text) < len(case.plain_text)
        rows.append((name, tallies))
    await engine.close()
    print(
        f"embedded model on vLLM {__import__('vllm').__version__} (CPU), greedy, max_tokens "
        f"{args.max_tokens}; {len(looping)} looping pages (kinds: "
        f"{', '.join(sorted({c.name.split('#')[0] for c in looping}))}), {len(legit)} "
        "legitimate pages with repeated lines\n"
    )
    print(
        "| detector | loops caught | tokens on looping pages | CER returned (looping) "
        "| legitimate pages cut short | tokens on legitimate pages | CER returned (legitimate) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, t in rows:
        lo, le = t["looping"], t["legit"]
        mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
        print(
            f"| {name} | {lo.caught}/{len(looping)} | {lo.tokens} | {mean(lo.cer):.3f} "
            f"| {le.cut_short}/{len(legit)} | {le.tokens} | {mean(le.cer):.3f} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=20, help="pages per set (at most)")
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument(
        "--pool", type=int, default=300, help="prone pages tried to find the looping ones"
    )
    args = parser.parse_args()
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

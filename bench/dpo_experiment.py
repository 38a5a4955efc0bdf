"""The retraining experiment of issue #5, end to end: traffic -> Redis -> pairs -> DPO -> eval.

    .venv/bin/python bench/dpo_experiment.py --model models/ocrguard-tiny --pages 300 \\
        --eval-per-kind 200 --work data/experiment

1. Production-like traffic: the SFT model is served (real HTTP, real Redis) and a split of
   synthetic pages never used in training or evaluation (seed 7_000_001) is POSTed with
   ``guard=detect``, so every degenerate generation lands in the failure stream exactly as
   production failures do.
2. Annotation: for each flagged request, the page's ground truth is POSTed to the feedback
   endpoint, standing in for a human correcting the page (the *chosen* side of the pair).
3. ``training.retrain``: export (consumer group) -> pairs -> DPO -> ``training eval`` of SFT
   and DPO models side by side on held-out pages (the evaluation seed), greedy decoding.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from app.config import EMBEDDED_MODEL, Settings  # noqa: E402
from app.server import background_server  # noqa: E402
from training.model.synth import Generator  # noqa: E402
from training.retrain.loop import RetrainConfig, retrain  # noqa: E402

TRAFFIC_SEED = 7_000_001
REDIS_URL = "redis://127.0.0.1:6379/0"


def traffic(
    model: str, pages: int, kinds: list[str], max_tokens: int, prefix: str
) -> dict[str, int]:
    settings = Settings(
        model=model, max_tokens=max_tokens, key_prefix=prefix, stream_key=prefix + "failures"
    )
    generator = Generator(TRAFFIC_SEED)
    counts = {"pages": 0, "degenerate": 0, "feedback": 0}
    with background_server(settings) as url, httpx.Client(timeout=600) as client:
        for i in range(pages):
            sample = generator.sample(i, kinds[i % len(kinds)])
            import io

            buffer = io.BytesIO()
            sample.image.save(buffer, format="PNG")
            body = client.post(
                f"{url}/v1/ocr",
                files={"file": ("page.png", buffer.getvalue())},
                data={"guard": "detect"},
            ).json()
            counts["pages"] += 1
            if body["pages"][0]["guard"]["tripped"]:
                counts["degenerate"] += 1
                fields = sample.fields
                correction = {
                    "page": 1,
                    "header": fields.header,
                    "margin": fields.margin,
                    "footer": fields.footer,
                    "text": fields.text,
                }
                reply = client.post(f"{url}/v1/ocr/{body['request_id']}/feedback", json=correction)
                counts["feedback"] += reply.status_code == 202
            if (i + 1) % 25 == 0:
                print(
                    f"traffic: {i + 1}/{pages} pages, {counts['degenerate']} degenerate",
                    file=sys.stderr,
                )
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=str(EMBEDDED_MODEL))
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--kinds", default="table,receipt,form,block,line")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--work", type=Path, default=Path("data/experiment"))
    parser.add_argument("--out", type=Path, default=Path("data/experiment/models"))
    parser.add_argument("--eval-per-kind", type=int, default=200)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--lora", action="store_true")
    args = parser.parse_args()

    prefix = f"ocrguard-experiment:{uuid.uuid4().hex[:8]}:"
    started = time.monotonic()
    counts = traffic(args.model, args.pages, args.kinds.split(","), args.max_tokens, prefix)
    print(f"traffic: {counts} in {time.monotonic() - started:.0f} s")
    result = retrain(
        RetrainConfig(
            model=args.model,
            work=args.work,
            out=args.out,
            redis_url=REDIS_URL,
            stream_key=prefix + "failures",
            key_prefix=prefix,
            group="experiment",
            min_idle_ms=1000,
            judge="structural",
            lora=args.lora,
            beta=args.beta,
            learning_rate=args.learning_rate,
            epochs=args.epochs,
            eval_per_kind=args.eval_per_kind,
            eval_kinds="line,block,table,receipt,form",
            max_new_tokens=args.max_tokens,
        )
    )
    summary = {
        "traffic": counts,
        "pairs": result.get("pairs"),
        "model": result.get("model"),
        "seconds": round(time.monotonic() - started),
    }
    if "eval" in result:
        for model, by_kind in result["eval"]["models"].items():
            pages = sum(s["pages"] for s in by_kind.values())
            degenerate = sum(s["degeneration_rate"] * s["pages"] for s in by_kind.values())
            cer = sum(s["cer"] * s["pages"] for s in by_kind.values()) / pages
            summary[Path(model).name] = {
                "pages": pages,
                "degeneration_rate": round(degenerate / pages, 4),
                "cer": round(cer, 4),
            }
        base, new = (summary[Path(m).name] for m in result["eval"]["models"])
        if base["degeneration_rate"]:
            summary["relative_reduction"] = round(
                1 - new["degeneration_rate"] / base["degeneration_rate"], 4
            )
        summary["cer_change_points"] = round(100 * (new["cer"] - base["cer"]), 2)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

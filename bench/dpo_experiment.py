"""The closed loop of issue #26, end to end: prone traffic -> live service -> Redis -> pairs ->
DPO -> side-by-side evaluation, in two stages (traffic is slow; recipes are tried on it).

    # 1. traffic: served through the live service into Redis (a prefix of its own)
    .venv/bin/python bench/dpo_experiment.py traffic --pages 3000 --prefix ocrguard-experiment:r1:
    # 2. one retraining round on it, with a recipe (repeat with other recipes)
    .venv/bin/python bench/dpo_experiment.py retrain --prefix ocrguard-experiment:r1: \\
        --work data/experiment/r1 --recipe training/recipes/dpo/ocrguard-tiny.yaml

1. **Traffic**: the degeneration-prone traffic's training split (training/retrain/traffic.py,
   seeds and font families never used by the evaluation) POSTed to the served SFT model over
   real HTTP with ``guard=detect``: every degenerate generation lands in the failure stream
   exactly as production failures do, and the service keeps every clean page
   (``OCRGUARD_KEEP_CLEAN_PAGES=1``) for the candidates.
2. **Annotation**: for each tripped request, the page's ground truth goes to the feedback
   endpoint, standing in for a person in the review queue (the *chosen* side).
3. **Retrain** (``ocrguard-train retrain``): export through consumer groups, N sampled
   candidates per page labelled by the guard, pairs (rejected: the live degenerate output
   and every degenerate candidate), DPO, then the serving and the new model side by side on
   the held-out prone traffic (greedy and T=0.7) and the standard held-out kinds.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from app.config import EMBEDDED_MODEL, Settings  # noqa: E402
from app.server import background_server  # noqa: E402
from training.cli import build_config  # noqa: E402
from training.retrain.loop import RetrainConfig, retrain  # noqa: E402
from training.retrain.traffic import Traffic  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"


def traffic(model: str, pages: int, start: int, max_tokens: int, prefix: str) -> dict[str, int]:
    settings = Settings(
        model=model,
        max_tokens=max_tokens,
        key_prefix=prefix,
        stream_key=prefix + "failures",
        keep_clean_pages=1.0,
        max_queue=2,
    )
    source = Traffic("train")
    counts = {"pages": 0, "tripped": 0, "corrected": 0}
    started = time.monotonic()
    with background_server(settings) as url, httpx.Client(timeout=600) as client:
        for i in range(start, start + pages):
            sample = source.sample(i)
            buffer = io.BytesIO()
            sample.image.save(buffer, format="PNG")
            body = client.post(
                f"{url}/v1/ocr",
                files={"file": ("page.png", buffer.getvalue())},
                data={"guard": "detect", "max_tokens": str(max_tokens)},
            ).json()
            counts["pages"] += 1
            if body["pages"][0]["guard"]["tripped"]:
                counts["tripped"] += 1
                fields = sample.fields
                correction = {
                    "page": 1,
                    **{f: getattr(fields, f) for f in ("header", "margin", "footer", "text")},
                }
                reply = client.post(f"{url}/v1/ocr/{body['request_id']}/feedback", json=correction)
                counts["corrected"] += reply.status_code == 202
            if counts["pages"] % 50 == 0:
                rate = counts["pages"] / (time.monotonic() - started)
                print(f"traffic: {counts} ({rate:.2f} pages/s)", file=sys.stderr, flush=True)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    stages = parser.add_subparsers(dest="stage", required=True)
    t = stages.add_parser("traffic")
    t.add_argument("--model", default=str(EMBEDDED_MODEL))
    t.add_argument("--pages", type=int, default=3000)
    t.add_argument("--start", type=int, default=0, help="first traffic index (to add more)")
    t.add_argument("--max-tokens", type=int, default=256)
    t.add_argument("--prefix", required=True)
    r = stages.add_parser("retrain")
    r.add_argument("--prefix", required=True)
    r.add_argument("--work", type=Path, required=True)
    r.add_argument("--recipe", type=Path, default=None, help="YAML of RetrainConfig fields")
    r.add_argument("--set", action="append", default=[], help="FIELD=VALUE over the recipe")
    args = parser.parse_args()

    if args.stage == "traffic":
        started = time.monotonic()
        counts = traffic(args.model, args.pages, args.start, args.max_tokens, args.prefix)
        print(f"traffic: {counts} in {time.monotonic() - started:.0f} s")
        return 0
    overrides = dict(item.split("=", 1) for item in args.set)
    config = build_config(
        RetrainConfig,
        args.recipe,
        {
            **overrides,
            "work": args.work,
            "redis_url": REDIS_URL,
            "stream_key": args.prefix + "failures",
            "key_prefix": args.prefix,
            "min_idle_ms": 1000,
        },
    )
    result = retrain(config)
    print(f"new model version: {result.get('model')}; released: {result.get('released')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

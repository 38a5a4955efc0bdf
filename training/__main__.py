"""``python -m training``: the offline pipeline's commands.

    python -m training synth --out data/synth --seed 0 --count 1000
    python -m training sft --out runs/tiny --steps 8000
    python -m training eval --model models/ocrguard-tiny --per-kind 500
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    synth = commands.add_parser("synth", help="render synthetic pages with ground truth")
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--count", type=int, default=1000)
    synth.add_argument("--kinds", default="chars,line,block,table,receipt,form")

    from .sft import SftConfig

    sft = commands.add_parser("sft", help="train the embedded model from scratch (resumable)")
    for f in dataclasses.fields(SftConfig):
        if f.name == "size":
            continue
        sft.add_argument(f"--{f.name.replace('_', '-')}", type=Path if f.name == "out" else (str if f.default is None else type(f.default)),
                         default=f.default, help=f.metadata.get("help"))

    evaluate = commands.add_parser("eval", help="CER, valid JSON and degeneration of models on held-out pages")
    evaluate.add_argument("--model", action="append", required=True, help="model folder (repeat to compare)")
    evaluate.add_argument("--per-kind", type=int, default=50)
    evaluate.add_argument("--kinds", default="line,block,table,receipt,form")
    evaluate.add_argument("--max-new-tokens", type=int, default=256)
    evaluate.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    evaluate.add_argument("--threads", type=int, default=2)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "synth":
        from .synth import write_dataset

        out = write_dataset(args.out, args.seed, args.count, tuple(args.kinds.split(",")))
        print(f"wrote {args.count} samples to {out}")
        return 0
    if args.command == "sft":
        from .sft import run

        values = {f.name: getattr(args, f.name) for f in dataclasses.fields(SftConfig) if f.name != "size"}
        print(f"checkpoint: {run(SftConfig(**values))}")
        return 0
    from .evaluation import evaluate_models

    results = evaluate_models(args.model, tuple(args.kinds.split(",")), args.per_kind, args.max_new_tokens, args.threads)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Teacher-forced loss of models on the same held-out pages, by kind (issue #27: "show the loss
falls on the new data" with less noise than a training log's single batches).

    .venv/bin/python bench/heldout_loss.py --model models/ocrguard-tiny \\
        --model runs/open-cpu/checkpoint --kinds open_line,open_block,line,block --pages 48

The pages are ``Generator(EVAL_SEED, split="heldout")``'s, as ``training eval`` draws them:
for the open kinds, held-out font families and held-out words. The loss is the mean
cross-entropy per answer token (nats), the answer and its end token only, as in training.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from training.evaluation.heldout import EVAL_SEED  # noqa: E402
from training.model.loading import load_model, load_processor  # noqa: E402
from training.model.sft import collate  # noqa: E402
from training.model.synth import Generator, parse_kinds  # noqa: E402


def heldout_loss(model_path: str, kinds, pages: int, batch: int) -> dict[str, float]:
    processor, model = load_processor(model_path), load_model(model_path).eval()
    generator = Generator(EVAL_SEED, split="heldout")
    out = {}
    for kind in kinds:
        total, tokens = 0.0, 0
        for start in range(0, pages, batch):
            samples = [generator.sample(i, kind) for i in range(start, min(pages, start + batch))]
            inputs = collate(processor, samples)
            labels = inputs.pop("labels")
            with torch.no_grad():
                logits = model(**inputs).logits[:, :-1].float()
            target = labels[:, 1:]
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum"
            )
            total, tokens = total + loss.item(), tokens + int((target != -100).sum())
        out[kind] = total / tokens
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--kinds", default="open_line,open_block,line,block")
    parser.add_argument("--pages", type=int, default=48)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kinds = parse_kinds(args.kinds)
    rows = {m: heldout_loss(m, kinds, args.pages, args.batch) for m in args.model}
    print(f"held-out pages: {args.pages} per kind, seed {EVAL_SEED}, split heldout")
    print("teacher-forced loss per answer token (nats)\n")
    print("| model | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    for model, losses in rows.items():
        print(f"| {model} | " + " | ".join(f"{losses[k]:.3f}" for k in kinds) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Microseconds per token of the loop detector on clean text and on loops of period 1-256.

    .venv/bin/python bench/guard_speed.py
    .venv/bin/python bench/guard_speed.py --tokenizer runs/tiny/checkpoint --repeat 5

Each case feeds one token per call, as the service does. Best of ``--repeat`` runs (the
machine is shared; the minimum is the least disturbed measurement).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import EMBEDDED_MODEL  # noqa: E402
from app.guard import LoopDetector  # noqa: E402
from bench.guard_quality import encode  # noqa: E402


def run_case(ids: list[int], texts: list[str], repeat: int) -> tuple[float, int]:
    best = float("inf")
    fed = 0
    for _ in range(repeat):
        detector = LoopDetector()
        feed = detector.feed
        start = time.perf_counter()
        fed = 0
        for token, text in zip(ids, texts):
            fed += 1
            if feed((token,), text) is not None:
                break
        best = min(best, time.perf_counter() - start)
    return best / fed * 1e6, fed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokenizer", default=str(EMBEDDED_MODEL))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer, local_files_only=True)
    corpus = sorted((ROOT / "bench/guard/corpus/legit").glob("*.txt"))
    text = "\n".join(p.read_text(encoding="utf-8") for p in corpus)
    ids, texts = encode(tokenizer, text)
    cases = [("clean documents (legit corpus)", ids, texts)]
    rng = random.Random(0)
    words = text.split()
    for period in (1, 4, 16, 64, 128, 256):
        prefix_ids, prefix_texts = encode(tokenizer, " ".join(rng.sample(words, 400)))
        unit_ids, unit_texts = prefix_ids[-period:], prefix_texts[-period:]
        cases.append(
            (
                f"loop, period {period} tokens (fed until trip)",
                prefix_ids + unit_ids * 40,
                prefix_texts + unit_texts * 40,
            )
        )
    print(f"tokenizer: {args.tokenizer}; best of {args.repeat}\n")
    print("| case | tokens fed | µs / token | tokens / s |")
    print("|---|---|---|---|")
    total_time = total_tokens = 0.0
    for name, case_ids, case_texts in cases:
        us, fed = run_case(case_ids, case_texts, args.repeat)
        total_time += us * fed
        total_tokens += fed
        print(f"| {name} | {fed} | {us:.2f} | {1e6 / us:,.0f} |")
    print(
        f"| **all cases** | {int(total_tokens)} | {total_time / total_tokens:.2f} | "
        f"{1e6 * total_tokens / total_time:,.0f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

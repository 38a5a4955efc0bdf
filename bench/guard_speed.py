"""Microseconds per token of the loop detector on clean text and on loops of period 1-256.
The clean text runs twice: without and with the page evidence the engines pass (the page's
line count, app/page_lines.py); the totals are over the cases without it, so that a guard
from before that evidence compares like with like.

    .venv/bin/python bench/guard_speed.py
    .venv/bin/python bench/guard_speed.py --tokenizer runs/tiny/checkpoint --repeat 5
    .venv/bin/python bench/guard_speed.py --against HEAD~1   # the guard at a git ref, side by side
    .venv/bin/python bench/guard_speed.py --against HEAD~1 --interpreted

The working tree's guard runs compiled where app/guard_build.py built it (``--interpreted``
adds it interpreted); a guard at a git ref runs interpreted.

Each case feeds one token per call, as the service does. Best of ``--repeat`` runs (the
machine is shared; the minimum is the least disturbed measurement). With ``--against``,
the two detectors take turns on every repeat, so a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import importlib
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import EMBEDDED_MODEL  # noqa: E402
from app.guard import NATIVE, LoopDetector, native  # noqa: E402
from bench.guard.real import legit_texts  # noqa: E402
from bench.guard_quality import encode  # noqa: E402


def run_case(detectors: list[type], ids: list[int], texts: list[str], repeat: int, **kwargs):
    """(µs per token, tokens fed) of each detector class, taking turns on every repeat;
    ``kwargs`` go to each detector (None for a detector that does not take them)."""
    best = [float("inf")] * len(detectors)
    fed = [0] * len(detectors)
    for _ in range(repeat):
        for k, detector_class in enumerate(detectors):
            try:
                feed = detector_class(**kwargs).feed
            except TypeError:  # a guard from before that evidence existed
                best[k] = None
                continue
            start = time.perf_counter()
            n = 0
            for token, text in zip(ids, texts):
                n += 1
                if feed((token,), text) is not None:
                    break
            best[k] = min(best[k], time.perf_counter() - start)
            fed[k] = n
    return [None if b is None else (b / n * 1e6, n) for b, n in zip(best, fed)]


def detector_at(ref: str) -> type:
    """``LoopDetector`` as ``app/guard`` was at git ``ref`` (imported from a temporary copy of
    its sources: interpreted, as nothing compiled is in git)."""
    folder = Path(tempfile.mkdtemp(prefix="guard-ref-"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "app/guard"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    (folder / "app/guard").rename(folder / "guard_at_ref")
    return _detector_in(folder, "guard_at_ref")


def interpreted_working_tree() -> type:
    """The working tree's ``LoopDetector`` interpreted (a copy of its sources without the
    build), beside the compiled one."""
    folder = Path(tempfile.mkdtemp(prefix="guard-interpreted-"))
    ignore = shutil.ignore_patterns("__pycache__", native.FOLDER.name)
    shutil.copytree(ROOT / "app" / "guard", folder / "guard_interpreted", ignore=ignore)
    return _detector_in(folder, "guard_interpreted")


def _detector_in(folder: Path, package: str) -> type:
    """``LoopDetector`` of a copy of the guard package under ``folder``, named ``package``."""
    sys.path.insert(0, str(folder))
    return importlib.import_module(package).LoopDetector


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokenizer", default=str(EMBEDDED_MODEL))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--against", metavar="GIT_REF", help="also time the guard at this ref")
    parser.add_argument(
        "--interpreted",
        action="store_true",
        help="also time the working tree's guard interpreted (when it runs compiled)",
    )
    args = parser.parse_args()
    detectors = [LoopDetector] + ([detector_at(args.against)] if args.against else [])
    names = ["working tree" + (" (compiled)" if NATIVE else "")]
    names += [f"{args.against} (interpreted)"] if args.against else []
    if args.interpreted and NATIVE:
        detectors.append(interpreted_working_tree())
        names.append("working tree (interpreted)")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer, local_files_only=True)
    text = "\n".join(legit_texts())
    ids, texts = encode(tokenizer, text)
    cases = [("clean documents (legit corpus)", ids, texts, {})]
    # The page evidence the engines pass (app/page_lines.py): the page holds every line of
    # the corpus, so nothing overflows; what the check costs is measured.
    told = {"page_lines": text.count("\n") + 1}
    cases.append(("clean documents, page line count told", ids, texts, told))
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
                {},
            )
        )
    print(f"tokenizer: {args.tokenizer}; best of {args.repeat}; guard: {', '.join(names)}\n")
    print("| case | guard | tokens fed | µs / token | tokens / s |")
    print("|---|---|---|---|---|")
    total_time = [0.0] * len(detectors)
    total_tokens = [0] * len(detectors)
    for name, case_ids, case_texts, kwargs in cases:
        timed = run_case(detectors, case_ids, case_texts, args.repeat, **kwargs)
        for k, result in enumerate(timed):
            if result is None:
                print(f"| {name} | {names[k]} | - | (takes no such evidence) | - |")
                continue
            us, fed = result
            print(f"| {name} | {names[k]} | {fed} | {us:.2f} | {1e6 / us:,.0f} |")
            if not kwargs:  # the totals compare like with like: every guard, the same cases
                total_time[k] += us * fed
                total_tokens[k] += fed
    for k, name in enumerate(names):
        us = total_time[k] / total_tokens[k]
        print(f"| **all cases** | {name} | {total_tokens[k]} | {us:.2f} | {1e6 / us:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

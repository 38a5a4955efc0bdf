"""The guard on a model's own outputs, against an oracle that reads each page's ground truth
instead of the guard (issue #25: recall and false alarms on the embedded model's own loops, with
and without the page's evidence).

    git archive sft-step-29200 models/ocrguard-tiny | tar -x -C data/sft   # a model that loops
    .venv/bin/python bench/guard_own_outputs.py --model data/sft/models/ocrguard-tiny --per-kind 30

Pages: the held-out degeneration-prone traffic (training/retrain/traffic.py, split heldout:
text-free pages, empty tables, long receipts of identical items, small print, ...) and the
held-out ordinary kinds whose pages repeat themselves (tables, receipts, forms), decoded
greedily and at T=0.7.

The oracle knows what the page holds. Every 24-character window of the output's transcription
(whitespace collapsed) with 8 letters or digits in it is counted in the output and in the
ground truth: a window the output writes at least two more times than the page holds it (or
an output that reaches the token limit without ending) is a **loop**; exactly one more time,
a **copy too many** (a re-emission: a sentence or a row written again once, the guard's hard
case); never more, **clean** (wrong words are not repetition; the clean outputs within CER
0.25 of the page are counted apart: a trip there aborts a transcription worth keeping). Runs
of one mark (``....``, ``____``) count by length: 48 characters beyond the page's longest run
of one mark is a loop. A receipt's 12 identical items written 12 times are clean; 15 times, a
loop. The guard judges the generated tokens as the service does (``app.labeler.label_ids``),
from the text alone and told the page's count of text lines (``app/page_lines.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import EMBEDDED_MODEL  # noqa: E402
from app.guard import DEFAULT_CONFIG  # noqa: E402
from app.labeler import label_ids  # noqa: E402

WINDOW = 24  # characters: longer than a cell or an amount, shorter than a sentence
WORDY = 8  # alphanumerics a window needs: runs of marks are judged by their length instead
MARK_RUN = 2 * WINDOW  # characters of one mark beyond the page's longest run of it: a loop
CORRECT_CER = 0.25  # a clean output this close to the page is a transcription worth keeping
CLASSES = ("loop", "copy too many", "clean")


def extra_copies(output: str, reference: str) -> int:
    """The most times a window of the output with words or numbers in it is written beyond
    the times the page holds it (at least once)."""
    out, ref = " ".join(output.split()), " ".join(reference.split())
    most = 0
    for start in range(0, max(0, len(out) - WINDOW + 1)):
        if start and out[start - 1] != " ":
            continue  # windows at word starts: the same copies, a fraction of the work
        window = out[start : start + WINDOW]
        if sum(c.isalnum() for c in window) < WORDY:
            continue
        # written once, a window the page lacks is a misreading, not a copy
        most = max(most, out.count(window) - max(1, ref.count(window)))
    return most


def longest_mark_run(text: str) -> int:
    """Characters in the longest run of one mark (``....``, ``____``, ``| | |``), spaces
    between its copies included."""
    best, run, mark = 0, 0, ""
    for c in text:
        if c == " " and run:
            continue
        if not c.isalnum() and not c.isspace():
            run = run + 1 if c == mark else 1
            mark = c
        else:
            run, mark = 0, ""
        best = max(best, run)
    return best


def oracle(output: str, reference: str, hit_limit: bool) -> str:
    extra = extra_copies(output, reference)
    if hit_limit or extra >= 2:
        return "loop"
    if longest_mark_run(output) - longest_mark_run(reference) >= MARK_RUN:
        return "loop"
    return "copy too many" if extra == 1 else "clean"


def decode(model_path: str, per_kind: int, max_tokens: int, batch: int) -> list[dict]:
    """One row per page and decoding: kind, decoding, oracle class, both guard labels."""
    import torch

    from training.evaluation.heldout import evaluate_loaded
    from training.model.loading import load_model, load_processor
    from training.retrain.traffic import PRONE_KINDS, Traffic

    torch.set_num_threads(2)
    processor, model = load_processor(model_path), load_model(model_path).eval()
    traffic = Traffic("heldout")
    kinds = (*PRONE_KINDS, "table", "receipt", "form")
    rows = []
    for temperature in (0.0, 0.7):
        records: list[dict] = []
        evaluate_loaded(
            processor, model, kinds, per_kind, max_tokens, batch, label=model_path,
            records=records, source=traffic.sample, temperature=temperature, page_evidence=True,
        )  # fmt: skip
        for record in records:
            ids, written, reference = record["token_ids"], record["hypothesis"], record["reference"]
            blind = label_ids(processor.tokenizer, ids, max_tokens=max_tokens)
            told = label_ids(
                processor.tokenizer, ids, max_tokens=max_tokens, page_lines=record["page_lines"]
            )
            rows.append(
                {
                    "kind": record["kind"],
                    "decoding": "greedy" if not temperature else f"T={temperature:g}",
                    "oracle": oracle(written, reference, record["hit_limit"]),
                    "extra": extra_copies(written, reference),
                    "correct": record["cer"] <= CORRECT_CER,
                    "guard": blind.verdict.kind if blind.verdict else None,
                    "guard_page": told.verdict.kind if told.verdict else None,
                    "page_lines": record["page_lines"],
                    "tokens": len(ids),
                    "output": written,
                    "reference": reference,
                }
            )
    return rows


def report(rows: list[dict]) -> str:
    lines = [
        "| oracle | outputs | guard trips, text alone | guard trips, told the page's lines |",
        "|---|---|---|---|",
    ]
    groups = {name: [r for r in rows if r["oracle"] == name] for name in CLASSES}
    groups[f"clean, CER <= {CORRECT_CER}"] = [r for r in groups["clean"] if r["correct"]]
    for name, group in groups.items():
        blind = sum(r["guard"] is not None for r in group)
        told = sum(r["guard_page"] is not None for r in group)
        total = max(1, len(group))
        lines.append(
            f"| {name} | {len(group)} | {blind} ({blind / total:.0%}) | {told} ({told / total:.0%}) |"
        )
    lines += [
        "",
        "by page kind (loop / copy too many / clean: outputs, text-alone trips, told)",
        "",
    ]
    lines += ["| kind | loop | copy too many | clean |", "|---|---|---|---|"]
    for kind in dict.fromkeys(r["kind"] for r in rows):
        cells = []
        for name in CLASSES:
            group = [r for r in rows if r["kind"] == kind and r["oracle"] == name]
            blind = sum(r["guard"] is not None for r in group)
            told = sum(r["guard_page"] is not None for r in group)
            cells.append(f"{len(group)}: {blind} / {told}" if group else "-")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    disagreements = [
        r
        for r in rows
        if (r["oracle"] == "clean") == (r["guard_page"] is not None)
        or (r["oracle"] == "clean") == (r["guard"] is not None)
    ]
    lines += ["", f"disagreements ({len(disagreements)}), the first 12:", ""]
    for r in disagreements[:12]:
        lines.append(
            f"- {r['kind']} {r['decoding']}: oracle {r['oracle']} (extra {r['extra']}), guard "
            f"{r['guard']} / told {r['guard_page']} (page lines {r['page_lines']}, "
            f"{r['tokens']} tokens): output {r['output'][:120]!r}; page {r['reference'][:80]!r}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=str(EMBEDDED_MODEL))
    parser.add_argument("--per-kind", type=int, default=30)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8, help="pages decoded together")
    args = parser.parse_args()
    rows = decode(args.model, args.per_kind, args.max_tokens, args.batch)
    print(
        f"model {args.model}; guard {DEFAULT_CONFIG.version}; {args.per_kind} held-out pages per "
        f"kind, greedy and T=0.7, max {args.max_tokens} tokens; {len(rows)} outputs\n"
    )
    print(report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

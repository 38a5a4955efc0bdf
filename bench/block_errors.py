"""Where the embedded model's prose-block errors are: by field, and whether it reads or recalls.

    .venv/bin/python bench/block_errors.py --model models/ocrguard-tiny --pages 500

Held-out block pages (training/model/synth.py, the evaluation seed, the same pages as ``training
eval``), greedy decoding. Per field (header, margin, body, footer): CER over the pages that
have that field in truth or in output, and the share exactly right. Then the body line by
line, output line n against true line n: exact, **recalled** (the output line is a line of
the pt-BR corpus, cut at 48 characters as blocks draw them, but not the true one: the model
wrote a memorised line instead of reading), missing (the output has fewer lines) or other.
The recalled lines are then split by which line was recalled: another line of the same page
(the model lost its place on the page), the corpus line that follows the one before it, true
or as the model wrote it (the model went on reciting the text it memorised), a corpus line
that opens with the same 5 characters as the true one (it found the line, read its start and
recalled the wrong line that starts so), or some other corpus line.

``--kind wordblock`` runs the training drill of the same layout, whose lines are random
corpus words: there is nothing to recall, so its CER is what the model reads.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.evaluation.cer import cer  # noqa: E402
from training.evaluation.heldout import evaluate_model  # noqa: E402
from training.model.synth import BLOCK_LINE_CHARS, _sentences  # noqa: E402

FIELDS = ("header", "margin", "text", "footer")
SAME_START = 5  # characters a recalled line shares with the true one to count as "same start"


def _corpus_lines() -> list[str]:
    """The corpus lines in corpus order, cut as block pages draw them."""
    return [line[:BLOCK_LINE_CHARS] for line in _sentences()]


def _body_pairs(records: list[dict]) -> Iterator[tuple[list[str], list[str]]]:
    """Each page's true body lines and the model's (none where its output is not the JSON)."""
    for record in records:
        fields = record["hypothesis_fields"]
        output = fields["text"].split("\n") if fields else []
        yield record["reference_fields"]["text"].split("\n"), output


def body_lines(records: list[dict]) -> dict[str, int]:
    corpus = set(_corpus_lines())
    counts = dict.fromkeys(("exact", "recalled", "missing", "other"), 0)
    for truth, output in _body_pairs(records):
        for n, line in enumerate(truth):
            if n >= len(output):
                counts["missing"] += 1
            elif output[n] == line:
                counts["exact"] += 1
            elif output[n] in corpus:
                counts["recalled"] += 1
            else:
                counts["other"] += 1
    return counts


def recalled_lines(records: list[dict]) -> dict[str, int]:
    """The recalled body lines (see ``body_lines``) by where the model took them from."""
    cut = _corpus_lines()
    corpus = set(cut)
    following: dict[str, set[str]] = {}
    for line, after in zip(cut, cut[1:]):
        following.setdefault(line, set()).add(after)
    counts = dict.fromkeys(("this page", "next in corpus", "same start", "elsewhere"), 0)
    for truth, output in _body_pairs(records):
        for n, (line, out) in enumerate(zip(truth, output)):
            if out == line or out not in corpus:
                continue  # exact, or not a corpus line: not recalled
            before = {truth[n - 1], output[n - 1]} if n else set()
            if out in truth:
                counts["this page"] += 1
            elif any(out in following.get(prior, ()) for prior in before):
                counts["next in corpus"] += 1
            elif out[:SAME_START] == line[:SAME_START]:
                counts["same start"] += 1
            else:
                counts["elsewhere"] += 1
    return counts


def _table(title: str, unit: str, counts: dict[str, int]) -> None:
    total = sum(counts.values())
    print(f"\n{title} ({total} {unit}):\n")
    print("| " + " | ".join(counts) + " |")
    print("|" + "---|" * len(counts))
    print("| " + " | ".join(f"{n} ({n / max(total, 1):.1%})" for n in counts.values()) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/ocrguard-tiny")
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--kind", default="block", choices=("block", "wordblock"))
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    records: list[dict] = []
    evaluate_model(args.model, (args.kind,), args.pages, 256, batch_size=32, records=records)
    page_cer = sum(r["cer"] for r in records) / len(records)
    print(
        f"model {args.model}: {len(records)} held-out {args.kind} pages, greedy, CER {page_cer:.3f}"
    )
    print(f"({sum(r['hypothesis_fields'] is None for r in records)} outputs not the page JSON)\n")
    print("| field | pages | CER | exact |")
    print("|---|---|---|---|")
    for name in FIELDS:
        pairs = [
            (r["reference_fields"][name], (r["hypothesis_fields"] or {}).get(name, ""))
            for r in records
        ]
        pairs = [(truth, out) for truth, out in pairs if truth or out]
        if pairs:
            mean = sum(cer(out, truth) if truth else 1.0 for truth, out in pairs) / len(pairs)
            exact = sum(out == truth for truth, out in pairs) / len(pairs)
            label = "body" if name == "text" else name
            print(f"| {label} | {len(pairs)} | {mean:.3f} | {exact:.1%} |")
    _table("body lines, output line n against true line n", "true lines", body_lines(records))
    _table("recalled lines, by where they come from", "recalled", recalled_lines(records))


if __name__ == "__main__":
    main()

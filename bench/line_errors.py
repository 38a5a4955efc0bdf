"""Where the embedded model's single-line errors are: by content, and how concentrated.

    .venv/bin/python bench/line_errors.py --model models/ocrguard-tiny --pages 500

Held-out lines (training/model/synth.py, the evaluation seed, the same pages as ``training eval``),
greedy decoding. Each line is put in a content class by the shape of its ground truth (CPF,
CNPJ, date, money, "city - UF", and "other": names, companies, addresses and lines of the
pt-BR corpus); per class: lines, CER, exact lines, lines with CER >= 0.3. Then the share
of all error that sits in lines with CER >= 0.3, and the worst lines side by side.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.evaluation.heldout import evaluate_model  # noqa: E402

CLASSES = (
    ("cpf", re.compile(r"\d{3}\.\d{3}\.\d{3}-\d{2}")),
    ("cnpj", re.compile(r"\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}")),
    ("date", re.compile(r"\d{2}/\d{2}/\d{4}")),
    ("money", re.compile(r"R\$ \d+,\d{2}")),
    ("city - UF", re.compile(r".+ - [A-Z]{2}")),
)
BAD = 0.3


def content_class(text: str) -> str:
    return next((name for name, shape in CLASSES if shape.fullmatch(text)), "other")


def cell(text: str) -> str:
    return "`" + text.replace("`", "'").replace("|", "\\|").replace("\n", "⏎") + "`"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/ocrguard-tiny")
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--worst", type=int, default=12)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    records: list[dict] = []
    evaluate_model(args.model, ("line",), args.pages, 128, batch_size=32, records=records)
    by_class: dict[str, list[float]] = {}
    for record in records:
        by_class.setdefault(content_class(record["reference"]), []).append(record["cer"])

    print(f"model {args.model}: {len(records)} held-out lines, greedy\n")
    print("| content | lines | CER | exact | CER >= 0.3 |")
    print("|---|---|---|---|---|")
    for name, errors in sorted(by_class.items(), key=lambda item: -sum(item[1])):
        print(
            f"| {name} | {len(errors)} | {sum(errors) / len(errors):.3f} | "
            f"{sum(e == 0 for e in errors)} | {sum(e >= BAD for e in errors)} |"
        )
    errors = [r["cer"] for r in records]
    total = sum(errors)
    bad = [e for e in errors if e >= BAD]
    print(
        f"| all | {len(errors)} | {total / len(errors):.3f} | {sum(e == 0 for e in errors)} | "
        f"{len(bad)} |\n"
    )
    print(
        f"{sum(bad) / total:.0%} of all error is in the {len(bad)} lines with CER >= {BAD} "
        f"({len(bad) / len(errors):.1%} of lines)\n"
    )
    print("| CER | ground truth | model |")
    print("|---|---|---|")
    for r in sorted(records, key=lambda r: -r["cer"])[: args.worst]:
        print(f"| {r['cer']:.2f} | {cell(r['reference'])} | {cell(r['hypothesis'])} |")


if __name__ == "__main__":
    main()

"""Recall, false alarms and detection lag of the ocrguard detector and peer rules.

    .venv/bin/python bench/guard_quality.py                       # embedded model's tokenizer
    .venv/bin/python bench/guard_quality.py --tokenizer runs/tiny/checkpoint --per-kind 40
    .venv/bin/python bench/guard_quality.py --against 9318ab7        # and the guard at a ref

Sets: real degenerate outputs and real legitimate repetition (bench/guard/corpus, sources in
its manifest), loops injected into real documents at a known onset (bench/guard/synthetic.py),
and clean synthetic pages from the embedded model's generator (training/model/synth.py). The
held-out real corpora (bench/guard/corpus/holdout*: each collected after the thresholds were
set, never read while setting them; their READMEs say whether that still holds) are reported
each on its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import EMBEDDED_MODEL  # noqa: E402
from app.guard import DEFAULT_CONFIG, LoopDetector  # noqa: E402
from app.labeler import stream_texts  # noqa: E402
from bench.guard import real as corpus  # noqa: E402
from bench.guard.peers import PEERS  # noqa: E402
from bench.guard.synthetic import CLEAR_KINDS, HARD_KINDS, inject_all  # noqa: E402


class Ocrguard:
    online = True

    def __init__(self, detector_class: type = LoopDetector, name: str = "") -> None:
        self.detector_class = detector_class
        self.name = name or f"ocrguard {DEFAULT_CONFIG.version}"

    def first_trip(self, ids, texts, page_lines: int | None = None):
        detector = (
            self.detector_class()
            if page_lines is None
            else self.detector_class(page_lines=page_lines)
        )
        for t, s in zip(ids, texts):
            if detector.feed((t,), s):
                return detector.verdict.trip_at
        # the text is a whole output: the service judges its last line as finished
        finish = getattr(detector, "finish", None)  # a guard from before 2026.12.8 has none
        verdict = finish() if finish is not None else None
        return verdict.trip_at if verdict is not None else None


def encode(tokenizer, text: str) -> tuple[list[int], list[str]]:
    ids = tokenizer.encode(text, add_special_tokens=False)
    return ids, stream_texts(tokenizer, ids)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def page_lines_of(text: str) -> int:
    """Stands in for app/page_lines.py on a text without its image: the lines a page holding
    this text shows (JSON's escaped breaks counted as breaks)."""
    return sum(1 for line in text.replace("\\n", "\n").splitlines() if line.strip())


def page_evidence_row(det, injected, real, holdout, clean) -> dict:
    """The guard told how many lines the page holds, as every engine tells it in the
    service: recall on injected loops (the page holds the real document before the loop)
    and false alarms on every legitimate text (the page holds the whole text)."""
    by_kind: dict[str, list[bool]] = {}
    for item, ids, texts, onset, _ in injected:
        trip = det.first_trip(ids, texts, page_lines_of(item.text[: item.onset_chars]))
        by_kind.setdefault(item.kind, []).append(trip is not None and trip > onset)
    legit = [
        m["file"].split("/")[-1][:3]
        for m, (ids, texts) in real["legit"] + holdout["legit"]
        if det.first_trip(ids, texts, page_lines_of("".join(texts))) is not None
    ]
    clean_fa = sum(
        det.first_trip(ids, texts, page_lines_of("".join(texts))) is not None
        for ids, texts in clean
    )
    hard = [h for k in HARD_KINDS for h in by_kind.get(k, [])]
    clear = [h for k in CLEAR_KINDS for h in by_kind.get(k, [])]
    return {
        "clear": sum(clear) / len(clear),
        "hard": sum(hard) / len(hard),
        "by_kind": {k: sum(v) / len(v) for k, v in by_kind.items()},
        "legit_flagged": legit,
        "clean_false_alarms": clean_fa,
    }


def held_out_row(det, holdout: dict[str, list]) -> dict:
    """Recall (clear: not a hard kind; hard: fuzzy or re-emission) and false alarms of one
    detector on the held-out real corpus; items by their number."""
    hits = [
        (m, det.first_trip(ids, texts) is not None) for m, (ids, texts) in holdout["degenerate"]
    ]

    def share(items: list[bool]) -> float:
        return sum(items) / max(1, len(items))

    exact3 = [h for m, h in hits if m.get("copies", 0) >= 3 and m.get("exact", False)]
    return {
        "detector": det.name,
        "recall": share([h for _, h in hits]),
        "clear": share([h for m, h in hits if m["kind"] not in HARD_KINDS]),
        "hard": share([h for m, h in hits if m["kind"] in HARD_KINDS]),
        "exact3": share(exact3),
        "exact3_items": len(exact3),
        "missed": [m["file"].split("/")[-1][:3] for m, h in hits if not h],
        "flagged": [
            m["file"].split("/")[-1][:3]
            for m, (ids, texts) in holdout["legit"]
            if det.first_trip(ids, texts) is not None
        ],
    }


def recall_by_kind(det, sets: dict[str, list]) -> dict[str, dict[str, list[int]]]:
    """Per named set of degenerate items: for each manifest kind, [caught, items]."""
    table: dict[str, dict[str, list[int]]] = {}
    for name, items in sets.items():
        row = table[name] = {}
        for m, (ids, texts) in items:
            cell = row.setdefault(m["kind"], [0, 0])
            cell[0] += det.first_trip(ids, texts) is not None
            cell[1] += 1
    return table


def print_by_kind(det_name: str, table: dict[str, dict[str, list[int]]]) -> None:
    kinds = [k for k in CLEAR_KINDS + HARD_KINDS if any(k in row for row in table.values())]
    print(f"\n{det_name} on the real degenerate outputs by kind (caught / items)\n")
    print("| corpus | " + " | ".join(kinds) + " | hard kinds |")
    print("|---|" + "---|" * (len(kinds) + 1))
    for name, row in table.items():
        cells = [f"{row[k][0]}/{row[k][1]}" if k in row else "-" for k in kinds]
        hard = [row[k] for k in HARD_KINDS if k in row]
        caught, items = sum(c for c, _ in hard), sum(n for _, n in hard)
        share = f"{caught}/{items} ({caught / max(1, items):.0%})"
        print(f"| {name} | " + " | ".join(cells) + f" | {share} |")


def print_held_out(name: str, items: dict[str, list], rows: list[dict]) -> None:
    n_held, n_held_legit = len(items["degenerate"]), len(items["legit"])
    print(
        f"\nreal corpus collected apart from tuning (bench/guard/corpus/{name}; its README "
        "says what it was used for since): "
        f"degenerate {n_held}, legitimate {n_held_legit}\n"
    )
    print(
        "| detector | recall (clear / hard) | >=3 exact copies | FA legit (of "
        f"{n_held_legit}) | missed | flagged |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['detector']} | {r['recall']:.1%} ({r['clear']:.0%} / {r['hard']:.0%}) | "
            f"{r['exact3']:.0%} of {r['exact3_items']} | {len(r['flagged'])} | "
            f"{', '.join(r['missed']) or '-'} | {', '.join(r['flagged']) or '-'} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokenizer", default=str(EMBEDDED_MODEL))
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--clean", type=int, default=300, help="clean synthetic pages")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--against", metavar="GIT_REF", help="also the guard at this git ref")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer, local_files_only=True)
    real = {"degenerate": [], "legit": []}
    for item in corpus.manifest():
        real[item["set"]].append((item, encode(tokenizer, corpus.read(item))))
    documents = corpus.legit_texts()
    injected = []
    for item in inject_all(documents, args.per_kind, seed=7):
        ids, texts = encode(tokenizer, item.text)
        onset = len(tokenizer(item.text[: item.onset_chars], add_special_tokens=False)["input_ids"])
        period = (
            len(tokenizer(item.unit * 8, add_special_tokens=False)["input_ids"]) / 8
            if item.unit
            else 0
        )
        injected.append((item, ids, texts, onset, period))
    from training.model.synth import KINDS, Generator

    generator = Generator(seed=424_242)
    clean = [
        encode(tokenizer, generator.sample(i, KINDS[i % len(KINDS)]).target)
        for i in range(args.clean)
    ]

    detectors = [Ocrguard()]
    if args.against:
        from bench.guard_speed import detector_at

        old = detector_at(args.against)
        version = getattr(sys.modules[old.__module__.rsplit(".", 1)[0]], "DEFAULT_CONFIG", None)
        label = f"ocrguard {getattr(version, 'version', '?')} ({args.against})"
        detectors.append(Ocrguard(old, label))
    detectors += PEERS
    held_sets: dict[str, dict[str, list]] = {}
    for folder in corpus.holdouts():
        items = held_sets[folder.name] = {"degenerate": [], "legit": []}
        for item in corpus.manifest(folder):
            items[item["set"]].append((item, encode(tokenizer, corpus.read(item))))
    holdout = held_sets[corpus.HOLDOUT.name]
    rows, kind_rows, misses = [], [], {}
    held: dict[str, list[dict]] = {name: [] for name in held_sets}
    for det in detectors:
        for name, items in held_sets.items():
            held[name].append(held_out_row(det, items))
        real_hits = [
            det.first_trip(ids, texts) is not None for _, (ids, texts) in real["degenerate"]
        ]
        real_clear = [
            h for (m, _), h in zip(real["degenerate"], real_hits) if m["kind"] not in HARD_KINDS
        ]
        real_hard = [
            h for (m, _), h in zip(real["degenerate"], real_hits) if m["kind"] in HARD_KINDS
        ]
        # The issue's own split: clear = at least 3 complete, identical copies in the excerpt
        # (labelled by hand in the manifest: copies, exact); everything else is hard.
        real_3copies = [
            h
            for (m, _), h in zip(real["degenerate"], real_hits)
            if m.get("copies", 0) >= 3 and m.get("exact", False)
        ]
        real_fa = [
            m["file"] for m, (ids, texts) in real["legit"] if det.first_trip(ids, texts) is not None
        ]
        clean_fa = sum(det.first_trip(ids, texts) is not None for ids, texts in clean)
        by_kind: dict[str, list[bool]] = {}
        lags, early = [], 0
        excess = []
        for item, ids, texts, onset, period in injected:
            trip = det.first_trip(ids, texts)
            if trip is not None and trip <= onset:
                early += 1  # fired on the real text before the loop: a false alarm there
                trip = None
            by_kind.setdefault(item.kind, []).append(trip is not None)
            if trip is not None and det.online and item.kind in CLEAR_KINDS:
                lags.append(trip - onset)
                excess.append(trip - onset - 2 * period)
        if det is detectors[0]:  # the working tree's guard
            misses = {
                "real_missed": [
                    m["file"] for (m, _), hit in zip(real["degenerate"], real_hits) if not hit
                ],
                "legit_flagged": real_fa,
            }
        clear = [h for k in CLEAR_KINDS for h in by_kind.get(k, [])]
        hard = [h for k in HARD_KINDS for h in by_kind.get(k, [])]
        rows.append(
            {
                "detector": det.name,
                "real_recall": sum(real_hits) / len(real_hits),
                "real_clear_recall": sum(real_clear) / len(real_clear),
                "real_hard_recall": sum(real_hard) / len(real_hard),
                "real_3_exact_copies_recall": sum(real_3copies) / max(1, len(real_3copies)),
                "real_3_exact_copies_items": len(real_3copies),
                "synthetic_clear_recall": sum(clear) / len(clear),
                "synthetic_hard_recall": sum(hard) / len(hard),
                "legit_false_alarms": len(real_fa),
                "clean_false_alarms": clean_fa,
                "early_trips": early,
                "lag_p50": percentile(lags, 0.5) if det.online else None,
                "lag_p95": percentile(lags, 0.95) if det.online else None,
                "lag_minus_2_periods_p50": percentile(excess, 0.5) if det.online else None,
            }
        )
        kind_rows.append({"detector": det.name, **{k: sum(v) / len(v) for k, v in by_kind.items()}})

    n_real, n_legit = len(real["degenerate"]), len(real["legit"])
    print(
        f"tokenizer: {args.tokenizer}; real degenerate {n_real}, real legitimate {n_legit}, "
        f"injected {len(injected)} ({args.per_kind} per kind), clean synthetic {len(clean)}\n"
    )
    print(
        "| detector | real recall (clear / hard) | real, >=3 exact copies | injected clear recall "
        "| injected hard recall | FA legit (of "
        f"{n_legit}) | FA clean (of {len(clean)}) | early trips | lag p50 | lag p95 | lag-2·period p50 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        fmt = lambda v: "post-hoc" if v is None else f"{v:.0f}"  # noqa: E731
        print(
            f"| {r['detector']} | {r['real_recall']:.1%} "
            f"({r['real_clear_recall']:.0%} / {r['real_hard_recall']:.0%}) | "
            f"{r['real_3_exact_copies_recall']:.0%} of {r['real_3_exact_copies_items']} | "
            f"{r['synthetic_clear_recall']:.1%} | "
            f"{r['synthetic_hard_recall']:.1%} | {r['legit_false_alarms']} | {r['clean_false_alarms']} | "
            f"{r['early_trips']} | {fmt(r['lag_p50'])} | {fmt(r['lag_p95'])} | "
            f"{fmt(r['lag_minus_2_periods_p50'])} |"
        )
    kinds = list(CLEAR_KINDS + HARD_KINDS)
    print("\nrecall by injected kind\n")
    print("| detector | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    for r in kind_rows:
        print(f"| {r['detector']} | " + " | ".join(f"{r.get(k, 0):.0%}" for k in kinds) + " |")
    print(f"\nocrguard misses on real degenerate: {misses['real_missed']}")
    print(f"ocrguard false alarms on real legitimate: {misses['legit_flagged']}")
    page = page_evidence_row(detectors[0], injected, real, holdout, clean)
    print(
        f"\n{detectors[0].name} told the page's line count, as the engines tell it in the "
        "service (simulated here from the real document's own lines: the page holds the text "
        "before an injected loop, and all of a legitimate text)\n"
    )
    print(
        "| injected clear | injected hard | fuzzy_loop | block_reemission | FA legit (tuning "
        "+ held-out) | FA clean |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| {page['clear']:.1%} | {page['hard']:.1%} | {page['by_kind']['fuzzy_loop']:.0%} | "
        f"{page['by_kind']['block_reemission']:.0%} | "
        f"{len(page['legit_flagged'])} ({', '.join(page['legit_flagged']) or '-'}) | "
        f"{page['clean_false_alarms']} |"
    )
    for name, items in held_sets.items():
        print_held_out(name, items, held[name])
    pooled = [item for items in held_sets.values() for item in items["degenerate"]]
    by_kind = recall_by_kind(
        detectors[0],
        {
            f"tuning ({len(real['degenerate'])})": real["degenerate"],
            f"held-out, {len(held_sets)} sets pooled ({len(pooled)})": pooled,
        },
    )
    print_by_kind(detectors[0].name, by_kind)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rows": rows,
                    "by_kind": kind_rows,
                    "ocrguard": misses,
                    "holdout": held[corpus.HOLDOUT.name],
                    "held_out_sets": held,
                    "page_evidence": page,
                    "real_by_kind": by_kind,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

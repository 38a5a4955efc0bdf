"""The recipe tries of one retraining round side by side (issue #26, item 3).

    .venv/bin/python bench/dpo_recipes.py --work data/experiment/r1

The round's own version (``versions/<name>-v1``, trained and evaluated by ``retrain``) holds
the serving model's evaluation; every later try is a version trained on the same pairs
(``ocrguard-train dpo --pairs WORK/pairs --out WORK/versions ...``) and evaluated alone on the
same pages (``ocrguard-train eval --model WORK/versions/<name>-vN --out WORK/eval-vN.json``,
the round's kinds, pages and token limit). Greedy pages are the same; sampled draws are seeded
per batch (training/evaluation/heldout.py), so the serving rows stand for every try. Each try
is judged by the release rule (training/evaluation/compare.py).

A later round's serving model is itself a DPO version. ``--baseline EVAL.json`` (an earlier
model evaluated alone on the same pages, e.g. the SFT model the first round started from)
adds a table of every model of the round against it: the reduction since that model, the
figure the published result is stated in.

    .venv/bin/python bench/dpo_recipes.py --work data/experiment/r5 --baseline data/experiment/r5/eval-sft.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.evaluation.compare import ReleaseRule, compare  # noqa: E402
from training.evaluation.heldout import _pooled, render_tables  # noqa: E402
from training.retrain.pairs import nll_only_rows  # noqa: E402


def tries(work: Path) -> tuple[str, list[tuple[str, str, dict, dict]]]:
    first = sorted((work / "versions").glob("*-v1"))[0]
    lineage = json.loads((first / "lineage.json").read_text())
    base = lineage["eval"]
    serving = next(m for m in base["models"] if m != str(first))
    found = [("v1", str(first), base, {**lineage["hyperparameters"], **_rows(lineage)})]
    for n in range(2, 100):
        folder, results = first.with_name(first.name[:-1] + str(n)), work / f"eval-v{n}.json"
        if not results.exists():
            continue
        alone = json.loads(results.read_text())
        key = next(iter(alone["models"]))
        merged = side_by_side(base, serving, alone, key)
        card = json.loads((folder / "lineage.json").read_text())
        found.append((f"v{n}", key, merged, {**card["hyperparameters"], **_rows(card)}))
    return serving, found


def side_by_side(first: dict, a: str, second: dict, b: str) -> dict:
    """Model ``a``'s rows of ``first`` beside model ``b``'s of ``second`` (same pages)."""
    return {
        **second,
        "models": {a: first["models"][a], b: second["models"][b]},
        "prone": {a: first["prone"][a], b: second["prone"][b]},
    }


def judged(results: dict, serving: str, candidate: str, rule: ReleaseRule) -> dict:
    """The cells both tables print for ``candidate`` against ``serving`` under ``rule``."""
    c = compare(results, serving, candidate, rule).as_dict()
    g, t = c["degeneration"]["greedy"], c["degeneration"].get("T=0.7")
    return {
        "greedy": f"{g['serving']:.1%} → {g['candidate']:.1%}",
        "sampled": f"{t['serving']:.1%} → {t['candidate']:.1%}" if t else "-",
        "reduction": f"{g['reduction']:.1%} / {t['reduction']:.1%}"
        if t
        else f"{g['reduction']:.1%}",
        "cer": " / ".join(f"{v * 100:+.1f}" for v in c["cer_change"].values()),
        "valid": f"{_pooled(results['prone'][candidate]['greedy'])['valid_json_rate']:.1%}",
        "better": c["better"],
        "reasons": "; ".join(c["reasons"]),
    }


def baseline_table(baseline: dict, serving: str, found: list, rule: ReleaseRule) -> list[str]:
    """The serving model and every try against the baseline, judged by the same rule."""
    key = next(iter(baseline["models"]))
    kinds = " / ".join(baseline["models"][key])
    lines = [
        f"against the baseline {key}:",
        "",
        f"| model | prone degeneration greedy | T=0.7 | reduction greedy / T=0.7 "
        f"| CER change {kinds} (points) | valid JSON prone greedy | rule |",
        "|---|---|---|---|---|---|---|",
    ]
    models = [("serving", serving, found[0][2])] + [(n, c, r) for n, c, r, _ in found]
    for name, model, results in models:
        j = judged(side_by_side(baseline, key, results, model), key, model, rule)
        verdict = "passes" if j["better"] else "no: " + j["reasons"]
        lines.append(
            f"| {name} | {j['greedy']} | {j['sampled']} | {j['reduction']} "
            f"| {j['cer']} | {j['valid']} | {verdict} |"
        )
    return lines


def _rows(lineage: dict) -> dict:
    """Preference pairs and NLL-only rows (anchors, replay) of a version's training set."""
    by_source = lineage["dataset"].get("by_source") or {}
    extra = nll_only_rows(by_source)
    rows = f"{sum(by_source.values()) - sum(extra.values())} + {extra['anchor']}"
    if extra["replay"]:
        rows += f" + {extra['replay']} replay"
    if extra["page"]:
        rows += f" + {extra['page']} page"
    if by_source.get("cut"):  # loop-style pairs (training/retrain/choice.py, pair_style)
        rows += " (loop style)"
    return {"rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--min-reduction", type=float, default=0.594)
    parser.add_argument("--max-cer-increase", type=float, default=0.005)
    parser.add_argument(
        "--baseline", type=Path, default=None, help="an earlier model's eval JSON, same pages"
    )
    args = parser.parse_args()
    serving, found = tries(args.work)
    rule = ReleaseRule(args.min_reduction, args.max_cer_increase)
    kinds = " / ".join(next(iter(found[0][2]["models"].values())))
    print(
        "| try | pairs + anchors | weights | beta | lr | sft weight | epochs "
        "| prone degeneration greedy | T=0.7 "
        f"| reduction greedy / T=0.7 | CER change {kinds} (points) | valid JSON prone greedy "
        "| released |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, candidate, results, hp in found:
        j = judged(results, serving, candidate, rule)
        weights = f"LoRA r{hp['lora_r']}" if hp["lora"] else "full"
        if hp.get("keep_update", 1.0) < 1.0:  # WiSE-FT (training/retrain/interpolate.py)
            weights += f", {hp['keep_update']} of the update"
        verdict = "yes" if j["better"] else "no: " + j["reasons"]
        print(
            f"| {name} | {hp['rows']} | {weights} | {hp['beta']} "
            f"| {hp['learning_rate']} | {hp['sft_weight']} | {hp['epochs']} "
            f"| {j['greedy']} | {j['sampled']} | {j['reduction']} | {j['cer']} | {j['valid']} "
            f"| {verdict} |"
        )
    if args.baseline is not None:
        baseline = json.loads(args.baseline.read_text())
        print("\n" + "\n".join(baseline_table(baseline, serving, found, rule)))
    for name, candidate, results, _ in found[1:]:
        alone = {**results, "models": {candidate: results["models"][candidate]}}
        alone["prone"] = {candidate: results["prone"][candidate]}
        print(f"\n### {name}\n\n{render_tables(alone, 20, 'cpu')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

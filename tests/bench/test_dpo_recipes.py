"""bench/dpo_recipes.py's table against an earlier model (a second round's reduction since
the SFT model), on hand-made evaluation results with a known answer."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from training.evaluation.compare import ReleaseRule

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("dpo_recipes", ROOT / "bench/dpo_recipes.py")
dpo_recipes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dpo_recipes)


def _scores(cer: float, degeneration: float = 0.0, valid: float = 1.0) -> dict:
    return {
        "pages": 100,
        "cer": cer,
        "exact_rate": 0.5,
        "valid_json_rate": valid,
        "degeneration_rate": degeneration,
        "mean_generated_tokens": 50.0,
        "tokens_per_second": 10.0,
    }


def _model(cer: float, greedy: float, sampled: float, valid: float = 1.0) -> tuple[dict, dict]:
    standard = {"line": _scores(cer), "table": _scores(cer)}
    prone = {
        "greedy": {"blank": _scores(0.3, greedy, valid), "noise": _scores(0.3, greedy, valid)},
        "T=0.7": {"blank": _scores(0.3, sampled), "noise": _scores(0.3, sampled)},
    }
    return standard, prone


def _results(**models: tuple[dict, dict]) -> dict:
    return {
        "models": {name: standard for name, (standard, _) in models.items()},
        "prone": {name: prone for name, (_, prone) in models.items()},
    }


def test_every_model_of_a_later_round_is_judged_against_the_first_model():
    baseline = _results(sft=_model(0.020, 0.100, 0.050))
    serving = _model(0.021, 0.020, 0.010)
    round_two = _results(r1=serving, r2=_model(0.022, 0.010, 0.005))
    later_try = _results(r1=serving, r3=_model(0.030, 0.005, 0.0))
    found = [("v1", "r2", round_two, {}), ("v2", "r3", later_try, {})]
    lines = dpo_recipes.baseline_table(baseline, "r1", found, ReleaseRule(0.594, 0.005))
    assert lines[0] == "against the baseline sft:"
    serving, v1, v2_row = lines[4:]
    assert serving.startswith("| serving | 10.0% → 2.0% | 5.0% → 1.0% | 80.0% / 80.0% |")
    assert "+0.1 / +0.1" in serving and serving.endswith("| passes |")
    assert v1.startswith("| v1 | 10.0% → 1.0% | 5.0% → 0.5% | 90.0% / 90.0% |")
    assert v1.endswith("| passes |")
    # a try within the rule against the serving model may still drift too far from the base
    assert v2_row.startswith("| v2 | 10.0% → 0.5% | 5.0% → 0.0% | 95.0% / 100.0% |")
    assert "no: line CER +0.010; table CER +0.010" in v2_row


def test_a_drop_in_valid_json_since_the_baseline_fails_the_rule():
    baseline = _results(sft=_model(0.020, 0.100, 0.050, valid=0.9))
    round_two = _results(r1=_model(0.020, 0.020, 0.010, valid=0.8), r2=_model(0.02, 0.01, 0.0))
    lines = dpo_recipes.baseline_table(
        baseline, "r1", [("v1", "r2", round_two, {})], ReleaseRule(0.594, 0.005)
    )
    assert "prone pages' valid JSON -10.0%" in lines[4]
    assert lines[5].endswith("| passes |")

"""Is a candidate model better than the serving one? The release rule of a retraining round,
read off one side-by-side evaluation (``evaluate_models`` of both on the same pages)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ReleaseRule:
    min_reduction: float = 0.0
    """Relative reduction of the held-out prone pages' greedy degeneration the candidate
    must beat (0: any reduction; with none to reduce, it must not add any)."""
    max_cer_increase: float = 0.005
    """Most a standard kind's CER may rise (0.005: half a point)."""
    valid_json_drop: float = 0.0
    """Most a standard kind's valid-JSON rate may fall, and the prone pages' (pooled,
    greedy)."""


@dataclass
class Comparison:
    better: bool
    degeneration: dict[str, float | None] = field(default_factory=dict)
    """Prone degeneration per decoding: serving, candidate, relative reduction."""
    cer_change: dict[str, float] = field(default_factory=dict)
    json_change: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    """Why it is not better (empty when it is)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def pooled_rate(by_kind: dict[str, dict], rate: str = "degeneration_rate") -> float:
    pages = sum(s["pages"] for s in by_kind.values())
    return sum(s[rate] * s["pages"] for s in by_kind.values()) / max(1, pages)


def compare(results: dict[str, Any], serving: str, candidate: str, rule: ReleaseRule) -> Comparison:
    comparison = Comparison(better=True)
    prone = results.get("prone") or {}
    for decoding in prone.get(serving) or {}:
        base = pooled_rate(prone[serving][decoding])
        new = pooled_rate(prone[candidate][decoding])
        reduction = 1 - new / base if base else None
        comparison.degeneration[decoding] = {
            "serving": base,
            "candidate": new,
            "reduction": reduction,
        }
    greedy = comparison.degeneration.get("greedy")
    if greedy is None:
        comparison.reasons.append("no prone evaluation: degeneration not measured")
    elif greedy["reduction"] is None:
        if greedy["candidate"] > 0:
            comparison.reasons.append("the candidate degenerates where the serving model did not")
    elif greedy["reduction"] <= rule.min_reduction:
        comparison.reasons.append(
            f"prone degeneration reduced by {greedy['reduction']:.1%}, not over {rule.min_reduction:.1%}"
        )
    if greedy is not None:
        base = pooled_rate(prone[serving]["greedy"], "valid_json_rate")
        change = pooled_rate(prone[candidate]["greedy"], "valid_json_rate") - base
        comparison.json_change["prone (greedy, pooled)"] = round(change, 4)
        if -change > rule.valid_json_drop:
            comparison.reasons.append(f"prone pages' valid JSON {change:+.1%}")
    for kind, base in results["models"][serving].items():
        new = results["models"][candidate][kind]
        comparison.cer_change[kind] = round(new["cer"] - base["cer"], 4)
        comparison.json_change[kind] = round(new["valid_json_rate"] - base["valid_json_rate"], 4)
        if comparison.cer_change[kind] > rule.max_cer_increase:
            comparison.reasons.append(f"{kind} CER +{comparison.cer_change[kind]:.3f}")
        if -comparison.json_change[kind] > rule.valid_json_drop:
            comparison.reasons.append(f"{kind} valid JSON {comparison.json_change[kind]:+.1%}")
    comparison.better = not comparison.reasons
    return comparison

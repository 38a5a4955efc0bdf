"""Character error rate: edit distance over the reference length."""

from __future__ import annotations


def edit_distance(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(hypothesis: str, reference: str) -> float:
    """Edits per reference character; 0 for two empty strings, capped at 1."""
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return min(1.0, edit_distance(hypothesis, reference) / len(reference))

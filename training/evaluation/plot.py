"""Degeneration by kind of two models on the prone traffic, as a dependency-free SVG bar chart
for a model card (issue #26: "a plot of degeneration by kind, SFT against DPO").

One group of bars per prone kind, one bar per (model, decoding), heights the degeneration
rate; the pooled rate of each bar's series is in the legend.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

COLOURS = ("#b0413e", "#e8a09a", "#2f6f9f", "#93bfdf")  # serving greedy/T, candidate greedy/T
WIDTH, HEIGHT = 820, 340
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 40, 96


def degeneration_svg(eval_results: dict[str, Any], models: list[str] | None = None) -> str:
    """The chart of ``eval_results["prone"]`` (training eval's results) for ``models``."""
    prone = eval_results.get("prone") or {}
    models = models or list(prone)
    series = [(m, d, prone[m][d]) for m in models for d in prone[m]]
    if not series:
        raise ValueError("no prone-traffic evaluation in these results")
    kinds = list(series[0][2])
    top = max(0.05, *(s[k]["degeneration_rate"] for _, _, s in series for k in kinds))
    top = min(1.0, round(top * 1.15 + 0.005, 2))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    group = plot_w / len(kinds)
    bar = group * 0.8 / len(series)
    y = lambda rate: TOP + plot_h * (1 - rate / top)  # noqa: E731
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="16" font-size="13">degeneration rate by prone kind '
        "(held-out traffic)</text>",
    ]
    for tick in range(5):
        rate = top * tick / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(rate):.1f}" y2="{y(rate):.1f}" '
            'stroke="#ddd"/>'
            f'<text x="{LEFT - 4}" y="{y(rate) + 4:.1f}" text-anchor="end">{rate:.0%}</text>'
        )
    for g, kind in enumerate(kinds):
        x0 = LEFT + g * group + group * 0.1
        for i, (_, _, by_kind) in enumerate(series):
            rate = by_kind[kind]["degeneration_rate"]
            parts.append(
                f'<rect x="{x0 + i * bar:.1f}" y="{y(rate):.1f}" width="{bar * 0.92:.1f}" '
                f'height="{TOP + plot_h - y(rate):.1f}" fill="{COLOURS[i % len(COLOURS)]}">'
                f"<title>{escape(kind)}: {rate:.1%}</title></rect>"
            )
        cx = LEFT + g * group + group / 2
        parts.append(
            f'<text x="{cx:.1f}" y="{TOP + plot_h + 14}" text-anchor="end" '
            f'transform="rotate(-35 {cx:.1f} {TOP + plot_h + 14})">{escape(kind)}</text>'
        )
    for i, (model, decoding, by_kind) in enumerate(series):
        pages = sum(s["pages"] for s in by_kind.values())
        pooled = sum(s["degeneration_rate"] * s["pages"] for s in by_kind.values()) / pages
        lx, ly = LEFT + (i % 2) * 390, HEIGHT - 30 + (i // 2) * 16
        parts.append(
            f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" '
            f'fill="{COLOURS[i % len(COLOURS)]}"/>'
            f'<text x="{lx + 14}" y="{ly}">{escape(Path(model).name)}, {escape(decoding)}: '
            f"{pooled:.1%} of {pages} pages</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"

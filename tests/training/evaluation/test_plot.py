import re
import xml.etree.ElementTree as ET

import pytest

from training.evaluation.plot import degeneration_svg


def _kind(rate: float, pages: int = 10) -> dict:
    return {"pages": pages, "degeneration_rate": rate}


RESULTS = {
    "prone": {
        "models/sft": {
            "greedy": {"blank": _kind(0.5), "ruled": _kind(0.2)},
            "T=0.7": {"blank": _kind(0.3), "ruled": _kind(0.1)},
        },
        "models/dpo": {
            "greedy": {"blank": _kind(0.1), "ruled": _kind(0.0)},
            "T=0.7": {"blank": _kind(0.0), "ruled": _kind(0.0)},
        },
    }
}


def _bars(svg: str) -> dict[str, float]:
    root = ET.fromstring(svg)
    bars = {}
    for rect in root.iter("{http://www.w3.org/2000/svg}rect"):
        title = rect.find("{http://www.w3.org/2000/svg}title")
        if title is not None:
            bars.setdefault(title.text, []).append(float(rect.get("height")))
    return bars


def test_bar_heights_follow_the_rates_and_the_legend_pools_pages():
    svg = degeneration_svg(RESULTS)
    bars = _bars(svg)  # titles "kind: rate", four series per kind
    assert bars["blank: 50.0%"][0] > bars["blank: 30.0%"][0] > bars["blank: 10.0%"][0]
    assert bars["ruled: 0.0%"] == [0.0, 0.0]
    assert bars["blank: 50.0%"][0] == pytest.approx(2.5 * bars["ruled: 20.0%"][0], rel=0.01)
    legend = re.findall(r">([^<>]+ of \d+ pages)<", svg)
    assert legend == [
        "sft, greedy: 35.0% of 20 pages",
        "sft, T=0.7: 20.0% of 20 pages",
        "dpo, greedy: 5.0% of 20 pages",
        "dpo, T=0.7: 0.0% of 20 pages",
    ]


def test_no_prone_evaluation_is_an_error():
    with pytest.raises(ValueError, match="no prone"):
        degeneration_svg({"models": {}, "prone": {}})

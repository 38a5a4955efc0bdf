"""The metric names a PromQL expression reads, without a PromQL parser.

Enough of PromQL for the expressions of the rules and the dashboard: label matchers,
range and subquery brackets, grouping clauses and strings are cut out, then every word
left is a function, a keyword or a metric name. A word this module does not know is
returned as a metric name, so a typo shows up as a metric the app does not export.
"""

from __future__ import annotations

import re

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z]+")
_WORD = re.compile(r"(?<![\w.$:])[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"offset", "inf", "nan"}
)


def metric_names(expr: str) -> set[str]:
    """Names of the series ``expr`` selects (``__name__`` matchers are not supported)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    while _BRACKETS.search(text):
        text = _BRACKETS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    names = set()
    for match in _WORD.finditer(text):
        word = match.group()
        is_call = text[match.end() :].lstrip().startswith("(")
        if not is_call and word.lower() not in _KEYWORDS:
            names.add(word)
    return names


def template_query_metrics(query: str) -> set[str]:
    """Metric names of a Grafana template query: ``label_values(metric, label)``,
    ``label_values(label)`` (none), ``metrics(regex)`` (none) or ``query_result(expr)``."""
    query = query.strip()
    if query.startswith("label_values("):
        inner = query[len("label_values(") : -1]
        selector, _, _label = inner.rpartition(",")
        return metric_names(selector) if selector else set()
    if query.startswith("query_result("):
        return metric_names(query[len("query_result(") : -1])
    return set()

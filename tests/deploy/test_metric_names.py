"""Every metric the rules and the dashboard read is one the app exports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import Metrics

from .promql import metric_names, template_query_metrics

DOCKER = Path(__file__).resolve().parents[2] / "docker"
RULES = DOCKER / "prometheus" / "rules" / "ocrguard.rules.yml"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "ocrguard.json"
DATASOURCES = DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yml"

# Series Prometheus makes itself for every target.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Sample names the app's /metrics shows once each labelled metric has a child
    (``_total``, ``_bucket``/``_sum``/``_count``, ``_info``: the names PromQL sees)."""
    metrics = Metrics()
    for collector in vars(metrics).values():
        labelnames = getattr(
            collector, "_labelnames", ()
        )  # prometheus_client keeps no public accessor
        if labelnames:
            collector.labels(*["x"] * len(labelnames))
    text = generate_latest(metrics.registry).decode()
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


def recording_rules() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {
        rule["record"]: rule["expr"]
        for group in groups
        for rule in group["rules"]
        if "record" in rule
    }


def rule_expressions() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule.get("record") or rule["alert"], rule["expr"]


def dashboard_panels(panels: list[dict]) -> Iterator[dict]:
    for panel in panels:
        yield panel
        yield from dashboard_panels(panel.get("panels", []))


def dashboard_expressions() -> Iterator[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]


def dashboard_template_queries() -> Iterator[tuple[str, str]]:
    for variable in json.loads(DASHBOARD.read_text())["templating"]["list"]:
        query = variable.get("query")
        if variable["type"] == "query":
            yield (
                f"variable {variable['name']!r}",
                query["query"] if isinstance(query, dict) else query,
            )


def resolve(
    names: set[str], records: dict[str, str], seen: frozenset[str] = frozenset()
) -> set[str]:
    """Replaces recording-rule names with the metrics their definitions read."""
    resolved = set()
    for name in names:
        if name in records and name not in seen:
            resolved |= resolve(metric_names(records[name]), records, seen | {name})
        else:
            resolved.add(name)
    return resolved


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("sum by (model) (rate(ocrguard_pages_total[5m]))", {"ocrguard_pages_total"}),
        (
            'histogram_quantile(0.9, sum by (le) (rate(x_bucket{model=~"$model"}[$__rate_interval])))',
            {"x_bucket"},
        ),
        ("a / on (model) group_left (kind) b > bool 0.05", {"a", "b"}),
        ('ocrguard:rate:ratio_rate5m{model="by (x)"} offset 5m', {"ocrguard:rate:ratio_rate5m"}),
        ("max_over_time(rate(c_total[1m])[10m:1m]) and absent(up{job='j'})", {"c_total", "up"}),
        ("sum(rate(c_total[5m])) without (instance) unless 1e3 < d", {"c_total", "d"}),
    ],
)
def test_metric_names_of_an_expression(expr, expected):
    assert metric_names(expr) == expected


def test_the_app_exports_the_metrics_this_test_relies_on(exported):
    assert {
        "ocrguard_pages_total",
        "ocrguard_guard_detection_lag_tokens_bucket",
        "ocrguard_ready",
    } <= exported


@pytest.mark.parametrize(
    ("where", "expr"),
    [*rule_expressions(), *dashboard_expressions()],
)
def test_every_expression_reads_exported_metrics(where, expr, exported):
    records = recording_rules()
    names = metric_names(expr)
    assert names, f"{where}: no metric found in {expr!r}"
    unknown = {n for n in names if ":" in n} - records.keys()
    assert not unknown, f"{where}: recording rules not defined in {RULES.name}: {sorted(unknown)}"
    missing = resolve(names, records) - exported - SCRAPE_SERIES
    assert not missing, f"{where}: not exported by app/metrics.py: {sorted(missing)}"


@pytest.mark.parametrize(("where", "query"), list(dashboard_template_queries()))
def test_template_variables_read_exported_metrics(where, query, exported):
    assert template_query_metrics(query) <= exported, f"{where}: {query!r}"


def test_dashboard_panels_use_the_provisioned_datasource():
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {source["uid"] for source in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    panels = list(dashboard_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in uids, panel["title"]
        assert all(target["datasource"]["uid"] in uids for target in panel["targets"]), panel[
            "title"
        ]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_dashboard_has_the_panels_operators_look_for():
    titles = {
        panel["title"] for panel in dashboard_panels(json.loads(DASHBOARD.read_text())["panels"])
    }
    assert {
        "Requests by outcome",
        "Degeneration rate per model",
        "Trips by kind and action",
        "Detection lag",
        "Tokens generated vs saved",
        "Recoveries by result",
        "Request duration",
        "Time to first token",
        "Failure records by result",
        "Buffered failure records",
        "In flight",
    } <= titles

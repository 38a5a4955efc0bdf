"""The Prometheus configuration, rules and rule unit tests pass promtool."""

from __future__ import annotations

from .commands import DOCKER, require, run


def test_config_is_valid():
    result = run(
        [require("promtool"), "check", "config", str(DOCKER / "prometheus" / "prometheus.yml")]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_are_valid():
    result = run(
        [
            require("promtool"),
            "check",
            "rules",
            *map(str, (DOCKER / "prometheus" / "rules").glob("*.yml")),
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests_pass():
    result = run(
        [
            require("promtool"),
            "test",
            "rules",
            str(DOCKER / "prometheus" / "tests" / "ocrguard.test.yml"),
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr

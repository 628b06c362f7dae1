"""Prometheus alerts and the Grafana dashboard: valid for promtool, built on guardian metrics."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "deploy" / "prometheus" / "guardian-alerts.yaml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "guardian-alerts_test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "guardian-dashboard.json"

# The metric names the guardian exports (guardian.metrics); alerts and panels may use no other.
METRICS = {
    "guardian_events_consumed_total",
    "guardian_events_rejected_total",
    "guardian_dead_letters_total",
    "guardian_decisions_total",
    "guardian_rollback_commands_total",
    "guardian_consumer_lag",
    "guardian_notifications_total",
    "guardian_active_deploys",
    "guardian_tracked_series",
    "guardian_rule_reloads_total",
    "guardian_ready",
    "guardian_build_info",
}
HISTOGRAMS = {"guardian_decision_latency_seconds"}
ALLOWED = (
    METRICS
    | HISTOGRAMS
    | {f"{name}_{suffix}" for name in HISTOGRAMS for suffix in ("bucket", "sum", "count")}
)
REQUIRED_ALERTS = {
    "GuardianConsumerLagGrowing",
    "GuardianNotificationsFailing",
    "GuardianNoEventsConsumed",
    "GuardianDeadLettersGrowing",
    "GuardianRuleReloadFailing",
    "GuardianNotReady",
}
# Grafana's variables, replaced by values so promtool can parse the panel queries.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h", "$job": "x"}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
_KEYWORDS |= {"and", "or", "unless", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (labels, functions and keywords left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)\b(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is required in CI: apt-get install prometheus")
        pytest.skip("promtool not on PATH (apt-get install prometheus); required when CI is set")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def _alert_rules() -> list[dict[str, Any]]:
    data = YAML(typ="safe").load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def _dashboard_exprs() -> list[str]:
    return [
        target["expr"]
        for panel in _panels(_dashboard()["panels"])
        for target in panel.get("targets", [])
    ]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (
            'sum by (job) (rate(guardian_dead_letters_total{job="a"}[5m]))',
            {"guardian_dead_letters_total"},
        ),
        ("up == 0 and on (job) max by (job) (guardian_ready) == 1", {"up", "guardian_ready"}),
        ("histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m]))) > 1", {"x_bucket"}),
        ('foo{outcome="failed by (x)"} / bar offset 5m', {"foo", "bar"}),
    ],
)
def test_metric_name_extraction(expr: str, expected: set[str]) -> None:
    """The PromQL name extractor finds selectors, skipping labels, functions, strings, keywords."""
    assert metric_names(expr) == expected


def test_promtool_accepts_the_alert_rules() -> None:
    """`promtool check rules` accepts guardian-alerts.yaml."""
    result = _run(_promtool(), "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    """`promtool test rules` shows each alert firing on bad series and quiet on healthy ones."""
    result = _run(_promtool(), "test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_cover_the_guardians_failure_modes() -> None:
    """Lag, failing notifications, silence, dead letters, reloads and readiness each alert."""
    rules = _alert_rules()
    names = {rule["alert"] for rule in rules}
    assert names >= REQUIRED_ALERTS
    tested = ALERT_TESTS.read_text(encoding="utf-8")
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert {"summary", "description"} <= rule["annotations"].keys()
        assert f"alertname: {rule['alert']}" in tested, f"{rule['alert']} has no promtool test"


def test_alerts_use_only_guardian_metrics() -> None:
    """Every alert expression selects only metrics the guardian exports."""
    for rule in _alert_rules():
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= ALLOWED, f"{rule['alert']}: unknown {used - ALLOWED}"


def test_dashboard_is_grafana_json_with_a_datasource_variable() -> None:
    """The dashboard parses, has a stable uid, unique panel ids and a datasource variable."""
    dashboard = _dashboard()
    assert dashboard["uid"] == "rollback-guardian"
    ids = [panel["id"] for panel in _panels(dashboard["panels"])]
    assert len(ids) == len(set(ids))
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in _panels(dashboard["panels"]):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]


def test_dashboard_uses_only_guardian_metrics_and_shows_them_all() -> None:
    """Every panel query selects only exported metrics, and every exported metric is on a panel."""
    seen: set[str] = set()
    for expr in _dashboard_exprs():
        used = metric_names(expr)
        assert used, expr
        assert used <= ALLOWED, f"unknown {used - ALLOWED} in {expr}"
        seen |= used
    assert {name.removesuffix("_bucket") for name in seen} >= METRICS | HISTOGRAMS


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Each panel query, with Grafana's variables filled in, is valid PromQL for promtool."""
    promtool = _promtool()
    rules = []
    for index, query in enumerate(_dashboard_exprs()):
        expr = query
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    rule_file = tmp_path / "dashboard-queries.yaml"
    rule_file.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _run(promtool, "check", "rules", str(rule_file))
    assert result.returncode == 0, result.stdout + result.stderr

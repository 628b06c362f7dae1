"""``promtool check metrics`` accepts everything the guardian exports on /metrics."""

from __future__ import annotations

import subprocess

from prometheus_client import generate_latest

from guardian.metrics import GuardianMetrics
from tests.integration.deploy.observability_integration_test import _promtool


def test_exported_metrics_pass_promtool() -> None:
    """Names, types, help texts and units follow Prometheus conventions (promtool's linter)."""
    metrics = GuardianMetrics()
    metrics.events_consumed.labels("metric.events").inc(3)
    metrics.events_rejected.labels("invalid").inc()
    metrics.decisions.labels("error-rate-critical", "rollback").inc()
    metrics.rollback_commands.labels("automatic").inc()
    metrics.decision_latency.observe(0.004)
    metrics.batch_seconds.observe(0.002)
    metrics.consumer_lag.labels("metric.events", "0").set(12)
    metrics.notifications.labels("slack", "delivered").inc()
    metrics.rule_reloads.labels("failed").inc()
    metrics.dead_letters.inc()
    metrics.ready.set(1)
    result = subprocess.run(
        [_promtool(), "check", "metrics"],
        input=generate_latest(metrics.registry),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()

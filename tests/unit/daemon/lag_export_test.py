"""Consumer lag on /metrics follows the assignment: a partition given up loses its series."""

from __future__ import annotations

from guardian.daemon.app import export_lag
from guardian.metrics import GuardianMetrics


def _lag_series(metrics: GuardianMetrics) -> dict[tuple[str, str], float]:
    (family,) = [f for f in metrics.registry.collect() if f.name == "guardian_consumer_lag"]
    return {(s.labels["topic"], s.labels["partition"]): s.value for s in family.samples}


def test_partitions_given_up_in_a_rebalance_leave_the_gauge() -> None:
    metrics = GuardianMetrics()
    gauge = metrics.consumer_lag
    held = export_lag(gauge, {("metric.events", 0): 5, ("metric.events", 1): 7}, set())
    assert _lag_series(metrics) == {("metric.events", "0"): 5, ("metric.events", "1"): 7}
    held = export_lag(gauge, {("metric.events", 1): 2}, held)
    assert _lag_series(metrics) == {("metric.events", "1"): 2}
    assert export_lag(gauge, {}, held) == set()
    assert _lag_series(metrics) == {}

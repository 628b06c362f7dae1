"""Refusals at the series cap become a counter by reason and a rate-limited warning."""

from __future__ import annotations

from structlog.testing import capture_logs

from guardian.daemon.refusals import RefusalReport
from guardian.engine import EngineStats
from guardian.metrics import GuardianMetrics


def stats(new_service: int, new_series: int = 0) -> EngineStats:
    """Engine totals with these refusals."""
    return EngineStats(
        tracked_series=10,
        late_events=0,
        duplicate_events=0,
        series_cap_rejections=new_service + new_series,
        active_deploys=0,
        expired_services=0,
        series_refused={"new_service": new_service, "new_series": new_series},
        series_cap=10,
    )


def refused(metrics: GuardianMetrics, reason: str) -> float | None:
    """The exported counter for ``reason``."""
    return metrics.registry.get_sample_value("guardian_series_refused_total", {"reason": reason})


def test_totals_are_exported_as_increments_by_reason() -> None:
    """Running totals from the engine add up on the counter, once each."""
    metrics = GuardianMetrics()
    report = RefusalReport(metrics)
    report.update(stats(3, 1))
    report.update(stats(3, 1))
    report.update(stats(7, 2))
    assert (refused(metrics, "new_service"), refused(metrics, "new_series")) == (7.0, 2.0)
    assert metrics.registry.get_sample_value("guardian_series_cap") == 10.0


def test_the_warning_is_logged_at_once_then_at_most_once_per_window() -> None:
    """The first refusal warns; later ones wait for the window and are summed into one line."""
    now = [0.0]
    report = RefusalReport(GuardianMetrics(), warn_every_s=60, clock=lambda: now[0])
    with capture_logs() as logs:
        report.update(stats(0))
        report.update(stats(5))
        for step in range(1, 6):
            now[0] = step * 10.0
            report.update(stats(5 + step))
        now[0] = 61.0
        report.update(stats(20))
    lines = [line for line in logs if line["event"] == "series_refused"]
    assert [(line["log_level"], line["new_service"]) for line in lines] == [
        ("warning", 5),
        ("warning", 15),
    ]
    assert lines[0]["series_cap"] == 10

"""Late data: events older than the allowed lateness are counted and skipped, never judged."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from guardian.config.settings import Settings
from guardian.daemon import app as daemon_app
from tests.integration.daemon.daemon_integration_test import running
from tests.support.events import T0, deploy, traffic
from tests.support.kafka import produce_json, read_for
from tests.support.metrics import events_consumed
from tests.support.waiting import eventually

pytestmark = pytest.mark.kafka

# A wide window and no `for`: a bad backlog that were judged would fire at once.
RULES = """\
rules:
  - name: error-rate-wide
    metric: error_rate
    window: 5m
    condition: "> 5%"
    for: 0s
    min_samples: 1
    action: rollback
"""
HEALTHY_S = 120
LATE_BAD = 30  # one every 2 s from T0+31 s, between the healthy ones (no duplicate times)


async def test_bad_metrics_arriving_too_late_are_counted_and_roll_nothing_back(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A backlog of 50 % errors from a minute ago, behind healthy data, is skipped as late."""
    monkeypatch.setattr(daemon_app, "_LAG_INTERVAL_S", 0.2)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    settings = settings_factory(allowed_lateness_s=20, rules=rules)
    with capture_logs() as logs:
        async with running(settings) as daemon:
            bootstrap = daemon.bootstrap_servers
            assert bootstrap
            registry = daemon.metrics.registry
            healthy = traffic(seconds=HEALTHY_S, every_s=2, cohort="canary")
            await produce_json(bootstrap, settings.deploy_topic, [deploy(deploy_id="d-late")])
            await produce_json(bootstrap, settings.metric_topic, healthy)
            await eventually(lambda: events_consumed(registry) >= 1 + len(healthy))
            # Event time now stands at T0+118 s; with 20 s lateness anything before T0+98 s is late.
            late_bad = traffic(
                start_ms=T0 + 31_000,
                seconds=2 * LATE_BAD,
                every_s=2,
                error_rate=0.5,
                cohort="canary",
            )
            await produce_json(bootstrap, settings.metric_topic, late_bad)
            await eventually(
                lambda: (
                    (
                        registry.get_sample_value(
                            "guardian_events_rejected_total", {"reason": "late"}
                        )
                        or 0
                    )
                    >= LATE_BAD
                )
            )
            # More healthy data: a judged backlog would still be in its window.
            after = traffic(start_ms=T0 + HEALTHY_S * 1000, seconds=90, every_s=2, cohort="canary")
            await produce_json(bootstrap, settings.metric_topic, after)
            total = 1 + len(healthy) + LATE_BAD + len(after)
            await eventually(lambda: events_consumed(registry) >= total)
            await asyncio.sleep(0.5)  # a would-be rollback would be written by now
            commands = await read_for(bootstrap, settings.command_topic, 1.0)
    assert commands == []
    assert registry.get_sample_value("guardian_events_rejected_total", {"reason": "late"}) == (
        LATE_BAD
    )
    reported = [e for e in logs if e["event"] == "events_not_judged" and e["reason"] == "late"]
    assert sum(e["count"] for e in reported) == LATE_BAD

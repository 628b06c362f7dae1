"""The series cap under a memory budget: refusals counted by reason, live deploys never starved."""

from __future__ import annotations

import pytest

from guardian.engine import Engine
from guardian.wire.events import InputEvent
from tests.unit.engine.builders import ERROR_RULE, deploy, metric, rules, run

ALERT_RULE = """
rules:
  - name: alert-errors
    applies: always
    metric: error_rate
    window: 10s
    condition: "> 5%"
    for: 5s
    min_samples: 2
    action: notify
"""


def test_refusals_are_counted_by_reason() -> None:
    """At the cap a new name counts as new_service, a known service's new region as new_series."""
    engine = Engine(rules(ERROR_RULE), max_series=2)
    run(engine, [metric(0, region=r, requests=1) for r in ("a", "b", "c", "c")])
    run(engine, [metric(1, service=f"flood-{i}", requests=1) for i in range(3)])
    stats = engine.stats
    assert stats.series_refused == {"new_service": 3, "new_series": 2}
    assert stats.series_cap_rejections == 5
    assert (stats.tracked_series, stats.series_cap) == (2, 2)


def test_known_services_are_still_judged_after_the_cap_bites() -> None:
    """A flood of new names past the cap leaves the series already held judging as before."""
    events: list[InputEvent] = [metric(t, requests=20, errors=5) for t in range(12)]
    alone = run(Engine(rules(ALERT_RULE), max_series=1), events)
    flooded = Engine(rules(ALERT_RULE), max_series=1)
    mixed: list[InputEvent] = []
    for i, event in enumerate(events):
        mixed.append(event)
        mixed.extend(metric(i, service=f"junk-{i}-{j}", requests=1) for j in range(50))
    decisions = run(flooded, mixed)
    assert [(d.rule, d.at_ms) for d in decisions] == [(d.rule, d.at_ms) for d in alone]
    assert [d.action for d in decisions] == ["notify"]
    assert flooded.stats.series_refused["new_service"] == 12 * 50


@pytest.mark.parametrize("regions", [("us-east",), ("us-east", "eu-west", "asia-east")])
def test_a_live_deploy_takes_its_series_past_the_cap(regions: tuple[str, ...]) -> None:
    """A service whose deploy is live gets every new series it needs, however full the table is."""
    engine = Engine(rules(ERROR_RULE), max_series=1)
    run(engine, [metric(0, service="other", requests=1)])
    run(engine, [metric(0, service=f"junk-{i}", requests=1) for i in range(5)])
    assert engine.stats.tracked_series == 1
    events: list[InputEvent] = [deploy(0, regions=list(regions))]
    events += [metric(t, region=r, requests=40, errors=8) for t in range(1, 40) for r in regions]
    decisions = run(engine, events)
    assert [d.action for d in decisions] == ["rollback"]
    stats = engine.stats
    assert stats.tracked_series == 1 + len(regions)
    assert stats.series_refused == {"new_service": 5, "new_series": 0}


def test_after_the_deploy_the_cap_applies_again() -> None:
    """Once a deploy is no longer live, its service's new series are refused like any other."""
    engine = Engine(rules(ERROR_RULE), max_series=1)
    run(engine, [deploy(0), metric(1, requests=10), deploy(2, "completed")])
    after_bake = 2 + engine.rules.settings.bake_time / 1000
    run(engine, [metric(after_bake, requests=10), metric(after_bake + 1, region="eu-west")])
    assert engine.stats.series_refused["new_series"] == 1
    assert engine.stats.tracked_series == 1

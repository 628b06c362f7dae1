"""Snapshots: a restarted engine restored from snapshots decides as if never stopped."""

from __future__ import annotations

import json

import pytest

from guardian.engine import Engine
from guardian.wire.events import InputEvent
from tests.unit.engine.builders import at, deploy, metric, rules, run

PACK = """
settings: {bake_time: 10m}
rules:
  - name: latency
    metric: latency_ms
    window: 10s
    condition: {increase: ">= 100%", baseline: pre_deploy, baseline_window: 5m}
    for: 10s
    min_samples: 2
    action: rollback
"""


def _events() -> list[InputEvent]:
    before = [metric(t, latency_ms=100) for t in range(-300, 0, 5)]
    after = [metric(t, latency_ms=300) for t in range(60)]
    return [*before, deploy(0), *after]


@pytest.mark.parametrize("cut", [40, 70, 80])
def test_restore_continues_where_the_snapshot_left_off(cut: int) -> None:
    """Stopping at any point and restoring from a JSON snapshot changes no decision."""
    events = _events()
    whole = run(Engine(rules(PACK)), events)
    first = Engine(rules(PACK))
    part = run(first, events[:cut])
    data = json.loads(json.dumps(first.snapshot("checkout", "production")))
    second = Engine(rules(PACK))
    second.restore(data)
    part += run(second, events[cut:])
    part += second.advance(at(3600))
    whole += Engine(rules(PACK)).advance(0)
    assert [(d.rule, d.action, d.at_ms) for d in part][:1] == [
        (d.rule, d.action, d.at_ms) for d in whole
    ][:1]
    assert second.stats.tracked_series == 1


def test_restore_keeps_the_rollback_and_escalates() -> None:
    """A restored deploy that was already rolled back gets no second rollback, and escalates."""
    first = Engine(rules(PACK))
    decisions = run(first, _events())
    assert [d.action for d in decisions] == ["rollback"]
    second = Engine(rules(PACK))
    second.restore(json.loads(json.dumps(first.snapshot("checkout", "production"))))
    assert run(second, [metric(t, latency_ms=300) for t in range(60, 90)]) == []
    assert [d.action for d in second.advance(at(3600))] == ["escalate"]
    assert second.explain("d1") is not None


def test_snapshot_of_unknown_service_and_bad_version() -> None:
    """Unknown services have no snapshot; other versions are refused."""
    engine = Engine(rules(PACK))
    assert engine.snapshot("x", "y") is None
    with pytest.raises(ValueError, match="version"):
        engine.restore({"v": 99})


def test_restore_a_baking_deploy() -> None:
    """A baking deploy comes back baking and completes after the bake time."""
    first = Engine(rules(PACK))
    run(first, [deploy(0), deploy(10, "completed"), metric(11, latency_ms=1)])
    second = Engine(rules(PACK))
    second.restore(json.loads(json.dumps(first.snapshot("checkout", "production"))))
    second.restore(json.loads(json.dumps(first.snapshot("checkout", "production"))))
    assert second.stats.tracked_series == 1
    second.advance(at(10 + 600))
    info = second.deploy_of("checkout", "production")
    assert info is not None
    assert info.status == "completed"

"""Deploy-only rules are bound while a deploy is live: memory follows the work, decisions do not."""

from __future__ import annotations

from guardian.engine import Engine, decode_snapshot, encode_snapshot
from guardian.engine.state import Series
from guardian.wire.events import InputEvent
from tests.unit.engine.builders import ERROR_RULE, bad_traffic, deploy, metric, rules, run

ALERT_AND_DEPLOY_RULES = (
    ERROR_RULE
    + """
  - name: alert-errors
    applies: always
    metric: error_rate
    window: 10s
    condition: "> 50%"
    for: 5s
    action: notify
"""
)


def series_of(engine: Engine) -> Series:
    """The one series of ``checkout`` in us-east."""
    st = engine.inspect("checkout", "production")
    assert st is not None
    return st.series[("us-east", "")]


def test_a_series_without_a_live_deploy_carries_no_deploy_rule() -> None:
    """No deploy: only the always-on rule is bound, and no window is clipped to a deploy."""
    engine = Engine(rules(ALERT_AND_DEPLOY_RULES))
    run(engine, bad_traffic(0, 5))
    series = series_of(engine)
    assert [b.rule.name for b in series.bindings] == ["alert-errors"]
    assert not series.deploy_feeders
    assert not any(key[4] for key in series.aggs)


def test_a_deploy_binds_them_in_plan_order_and_judges_the_samples_before_its_event() -> None:
    """Metrics before the deploy's event decide as if the deploy had been seen first."""
    traffic = bad_traffic(1, 40)
    late: list[InputEvent] = [*traffic[:15], deploy(0), *traffic[15:]]
    early: list[InputEvent] = [deploy(0), *traffic]
    lazy, eager = Engine(rules(ALERT_AND_DEPLOY_RULES)), Engine(rules(ALERT_AND_DEPLOY_RULES))
    decided_late, decided_early = run(lazy, late), run(eager, early)
    assert [(d.rule, d.at_ms, d.reason) for d in decided_late] == [
        (d.rule, d.at_ms, d.reason) for d in decided_early
    ]
    assert "errors" in {d.rule for d in decided_late}
    assert [b.rule.name for b in series_of(lazy).bindings] == ["errors", "alert-errors"]


def test_they_are_unbound_an_hour_after_the_deploy_stopped_being_live() -> None:
    """Explain still lists the deploy's rules for a while, then their state is dropped."""
    engine = Engine(rules(ALERT_AND_DEPLOY_RULES), idle_ttl_ms=7_200_000)
    run(engine, [deploy(0), *bad_traffic(1, 5), deploy(6, "rolled_back")])
    explained = engine.explain("d1")
    assert explained is not None
    assert "errors" in {row["rule"] for row in explained["rules"]}
    run(engine, [metric(t, requests=20) for t in range(60, 3600, 60)])
    assert series_of(engine).deploy_bound
    run(engine, [metric(t, requests=20) for t in range(3620, 3800, 20)])
    series = series_of(engine)
    assert not series.deploy_bound
    assert [b.rule.name for b in series.bindings] == ["alert-errors"]
    assert not series.deploy_feeders
    decisions = run(engine, [deploy(3800, deploy_id="d2"), *bad_traffic(3801, 40)])
    assert [d.rule for d in decisions if d.action == "rollback"] == ["errors"]


def test_a_snapshot_of_a_live_deploy_restores_them() -> None:
    """A restored service with a live deploy has its deploy rules and their progress."""
    engine = Engine(rules(ALERT_AND_DEPLOY_RULES))
    run(engine, [deploy(0), *bad_traffic(1, 6)])
    snapshot = engine.snapshot("checkout", "production")
    assert snapshot is not None
    restored = Engine(rules(ALERT_AND_DEPLOY_RULES))
    restored.restore(decode_snapshot(encode_snapshot(snapshot)))
    assert [b.rule.name for b in series_of(restored).bindings] == ["errors", "alert-errors"]
    assert series_of(restored).bindings[0].since_ms == series_of(engine).bindings[0].since_ms
    rest = bad_traffic(7, 30)
    assert [d.rule for d in run(restored, rest)] == [d.rule for d in run(engine, rest)]

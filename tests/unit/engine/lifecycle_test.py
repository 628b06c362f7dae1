"""Deploy lifecycle, check rules, time-driven decisions, hot reload and explanations."""

from __future__ import annotations

import pytest

from guardian.engine import Engine
from guardian.engine.decision import Decision
from guardian.wire.events import InputEvent
from tests.unit.engine.builders import (
    ERROR_RULE,
    at,
    bad_traffic,
    check,
    deploy,
    metric,
    rules,
    run,
)

CHECKS = """
settings:
  bake_time: 10m
  rollback_timeout: 10m
  rollback_timeout_by_strategy: {blue_green: 2m}
rules:
  - name: during
    check: {names: [api_*], status: fail}
    action: rollback
  - name: switch
    match: {strategy: blue_green}
    check: {names: ["*"], status: warn, within: 5m}
    action: rollback
  - name: outside
    applies: outside_deploy
    check: {names: [api_*]}
    cooldown: 1m
    action: notify
"""


def _summary(decisions: list[Decision]) -> list[tuple[str, str, str | None]]:
    return [(d.rule, d.action, d.deploy_id) for d in decisions]


@pytest.mark.parametrize(
    ("name", "events", "expected"),
    [
        ("during", [deploy(0), check(60, "api_health")], [("during", "rollback", "d1")]),
        (
            "outside",
            [check(60, "api_health"), check(90, "api_health"), check(200, "api_health")],
            [("outside", "notify", None), ("outside", "notify", None)],
        ),
        (
            "other deploy id",
            [deploy(0), check(60, "api_health", deploy_id="d0")],
            [("outside", "notify", None)],
        ),
        ("pass", [deploy(0), check(60, "api_health", "pass")], []),
        ("other name", [deploy(0), check(60, "disk")], []),
        (
            "bake",
            [deploy(0), deploy(60, "completed"), check(300, "api_health")],
            [("during", "rollback", "d1")],
        ),
        (
            "after bake",
            [deploy(0), deploy(60, "completed"), check(1000, "api_health")],
            [("outside", "notify", None)],
        ),
        (
            "warn bg",
            [deploy(0, strategy="blue_green"), check(60, "smoke", "warn")],
            [("switch", "rollback", "d1")],
        ),
        ("warn bg late", [deploy(0, strategy="blue_green"), check(400, "smoke", "warn")], []),
    ],
)
def test_check_rules(name: str, events: list, expected: list) -> None:  # type: ignore[type-arg]
    """Checks fire at once: rollback during a deploy, notify outside, within a time after it."""
    assert _summary(run(Engine(rules(CHECKS)), events)) == expected, name


def test_unconfirmed_rollback_escalates_once_per_strategy_timeout() -> None:
    """No rolled_back within the strategy's timeout → one escalate decision, critical."""
    engine = Engine(rules(CHECKS))
    run(engine, [deploy(0, strategy="blue_green"), check(60, "api_health")])
    assert engine.advance(at(60 + 119)) == []
    escalations = engine.advance(at(60 + 120))
    assert [(d.action, d.severity) for d in escalations] == [("escalate", "critical")]
    assert engine.advance(at(10_000)) == []


def test_confirmed_rollback_does_not_escalate() -> None:
    """A rolled_back event (even after a newer deploy started) stops the escalation."""
    engine = Engine(rules(CHECKS))
    run(
        engine,
        [
            deploy(0),
            check(60, "api_health"),
            deploy(90, deploy_id="d2"),
            deploy(100, "rolled_back"),
        ],
    )
    assert engine.advance(at(10_000)) == []
    assert engine.deploy_of("checkout", "production").deploy_id == "d2"  # type: ignore[union-attr]


def test_deploy_lifecycle() -> None:
    """started opens, progressed extends regions, completed bakes, then completes."""
    engine = Engine(rules(CHECKS))
    assert engine.deploy_of("checkout", "production") is None
    run(
        engine,
        [
            deploy(0, strategy="progressive"),
            deploy(60, "progressed", regions=["us-east", "eu-west"]),
        ],
    )
    info = engine.deploy_of("checkout", "production")
    assert info is not None
    assert (info.status, info.regions) == ("active", ("us-east", "eu-west"))
    run(engine, [deploy(120, "completed")])
    assert engine.stats.active_deploys == 1
    engine.advance(at(120 + 600))
    info = engine.deploy_of("checkout", "production")
    assert info is not None
    assert (info.status, info.completed_at_ms) == ("completed", at(120))
    assert engine.stats.active_deploys == 0


def test_stale_and_unknown_deploy_events() -> None:
    """An older started is stale; steps of unknown deploys are adopted or ignored."""
    engine = Engine(rules(CHECKS))
    run(engine, [deploy(100, deploy_id="new"), deploy(50, deploy_id="old")])
    assert engine.deploy_of("checkout", "production").deploy_id == "new"  # type: ignore[union-attr]
    run(engine, [deploy(200, "rolled_back", deploy_id="ghost")])
    assert engine.deploy_of("checkout", "production").deploy_id == "new"  # type: ignore[union-attr]
    run(engine, [deploy(300, "progressed", deploy_id="p2")])  # started missed: adopt
    assert engine.deploy_of("checkout", "production").deploy_id == "p2"  # type: ignore[union-attr]
    run(engine, [deploy(400, "failed", deploy_id="p2")])
    assert engine.deploy_of("checkout", "production").status == "failed"  # type: ignore[union-attr]
    assert engine.explain("nope") is None


NOTIFY = """
rules:
  - name: hot
    applies: always
    metric: cpu
    window: 10s
    condition: "> 80%"
    resolve: "< 50%"
    for: 10s
    min_samples: 2
    cooldown: 1h
    action: notify
  - name: silent
    applies: always
    metric: heartbeat
    window: 10s
    condition: "< 0"
    no_data: {policy: alert, after: 30s}
    action: notify
"""


def test_hysteresis_resolve_and_cooldown() -> None:
    """A notify rule resolves below its resolve level (not just below its fire level), once."""
    engine = Engine(rules(NOTIFY))
    cpu = [0.9] * 30 + [0.7] * 30 + [0.4] * 30 + [0.9] * 30
    decisions = run(engine, [metric(i, cpu=v) for i, v in enumerate(cpu)])
    states = [(d.rule, d.state) for d in decisions]
    assert states == [("hot", "firing"), ("hot", "resolved")]  # re-fire blocked by cooldown
    assert decisions[1].at_ms == at(66)  # mean of 3x0.7 and 7x0.4 drops below 0.5
    assert decisions[1].reason.startswith("resolved: cpu")


def test_no_data_alert() -> None:
    """A series that goes silent for no_data.after raises one alert until data returns."""
    engine = Engine(rules(NOTIFY))
    run(engine, [metric(0, heartbeat=1)])
    assert engine.advance(at(29)) == []
    silent = engine.advance(at(31))
    assert [d.reason for d in silent] == ["no data for heartbeat for 31s"]
    assert engine.advance(at(100)) == []
    run(engine, [metric(101, heartbeat=1)])
    assert engine.advance(at(200))[0].rule == "silent"


STABLE = """
rules:
  - name: vs-stable
    match: {cohort: canary}
    metric: latency_ms
    window: 10s
    condition: {increase: ">= 50%", baseline: stable, min_delta: 20ms}
    for: 10s
    min_samples: 2
    action: rollback
"""


@pytest.mark.parametrize(
    ("stable", "canary", "fires"),
    [(100, 200, True), (100, 140, False), (10, 25, False), (None, 500, False)],
)
def test_canary_against_the_stable_cohort(stable: float | None, canary: float, fires: bool) -> None:
    """The canary is compared with the stable cohort now, with a noise floor; no stable, no fire."""
    events: list[InputEvent] = [deploy(0, strategy="canary")]
    for i in range(30):
        if stable is not None:
            events.append(metric(i, cohort="stable", latency_ms=stable))
        events.append(metric(i + 0.5, cohort="canary", latency_ms=canary))
    engine = Engine(rules(STABLE))
    assert bool(run(engine, events)) is fires
    explanation = engine.explain("d1")
    assert explanation is not None
    if not fires:
        assert explanation["rules"][0]["state"] == "ok"


def test_swap_rules_keeps_windows_and_deploys() -> None:
    """A hot reload keeps window contents and the deploy; the new rules decide."""
    engine = Engine(rules(STABLE))
    run(engine, [deploy(0), *bad_traffic(0, 5)])
    engine.swap_rules(rules(ERROR_RULE))
    decisions = run(engine, bad_traffic(5, 20))
    assert [d.rule for d in decisions] == ["errors"]
    engine.swap_rules(rules(ERROR_RULE.replace("> 5%", "> 50%")))
    assert engine.deploy_of("checkout", "production") is not None


def test_explain_says_why_rules_did_not_fire() -> None:
    """The explanation gives the reason, value and counts per candidate rule."""
    engine = Engine(rules(ERROR_RULE))
    run(engine, [deploy(0), metric(0, requests=20, errors=1)])
    rows = engine.explain("d1")["rules"]  # type: ignore[index]
    assert rows[0]["why"] == "min_samples 2 not reached (1)"
    run(engine, [metric(1, requests=20, errors=1)])
    assert engine.explain("d1")["rules"][0]["why"] == "min_volume 50 requests not reached (40)"  # type: ignore[index]
    run(engine, [metric(2, requests=20, errors=0)])
    assert "condition > 5% not met" in engine.explain("d1")["rules"][0]["why"]  # type: ignore[index]
    run(engine, bad_traffic(3, 3))
    assert "needs for 10s" in engine.explain("d1")["rules"][0]["why"]  # type: ignore[index]


def test_process_refuses_other_types() -> None:
    """Only decoded input events are accepted."""
    with pytest.raises(TypeError):
        Engine(rules(ERROR_RULE)).process("nope")  # type: ignore[arg-type]


def test_started_arriving_after_a_later_step_moves_the_start_back() -> None:
    """A started that arrives after progressed (reordered) restores the earlier start time."""
    engine = Engine(rules(ERROR_RULE))
    decisions = run(engine, [deploy(5, "progressed"), *bad_traffic(0, 3), deploy(0)])
    decisions += run(engine, bad_traffic(3, 30))
    info = engine.deploy_of("checkout", "production")
    assert info is not None
    assert info.started_at_ms == at(0)
    assert decisions[0].evidence["samples"] == 10


HOT_CPU = """
rules:
  - name: hot
    applies: always
    metric: cpu
    window: 1m
    condition: "> 80%"
    for: 0s
    action: notify
"""


def test_swap_rules_keeps_ring_windows_only_while_a_rule_reads_them() -> None:
    """A reload keeps an always-on window a rule still reads, and forgets one no rule reads."""
    engine = Engine(rules(HOT_CPU))
    assert [d.rule for d in run(engine, [metric(i, cpu=0.9) for i in range(30)])] == ["hot"]
    state = engine.inspect("checkout", "production")
    assert state is not None
    series = state.series[("us-east", "")]
    engine.swap_rules(rules(HOT_CPU.replace("> 80%", "> 85%")))
    assert series.bindings[0].firing
    assert series.bindings[0].agg.count == 30  # window and progress kept
    engine.swap_rules(rules(ERROR_RULE))
    assert series.rings == {}
    assert series.feeders == []
    engine.swap_rules(rules(HOT_CPU))
    run(engine, [metric(31, cpu=0.1)])
    assert series.bindings[0].agg.count == 1  # a fresh window: the earlier samples are gone

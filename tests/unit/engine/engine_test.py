"""The engine's decisions over event time: certainty, lateness, duplicates, one rollback."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardian.engine import Engine, load_rules
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

RULES_DIR = Path(__file__).resolve().parents[3] / "rules"


def test_bad_traffic_fires_once_after_for() -> None:
    """A condition that holds for ``for`` fires one rollback with reason and evidence."""
    engine = Engine(rules(ERROR_RULE))
    decisions = run(engine, [deploy(0), *bad_traffic(0, 40)])
    assert len(decisions) == 1
    d = decisions[0]
    assert (d.rule, d.action, d.severity, d.deploy_id) == ("errors", "rollback", "critical", "d1")
    assert d.at_ms == at(12)  # condition holds from the 2nd sample (volume 40 < 50 at 1st... 3rd)
    assert d.regions == ("us-east",)
    assert d.reason == "error rate 25% over 10s > 5%"
    assert d.evidence["observed"] == pytest.approx(0.25)
    assert d.evidence["window_s"] == 10
    assert d.evidence["volume"] >= 50


@pytest.mark.parametrize(
    ("name", "events"),
    [
        ("no deploy", bad_traffic(0, 40)),
        ("low volume", [deploy(0), *[metric(i, requests=2, errors=1) for i in range(40)]]),
        (
            "one bad sample",
            [deploy(0), *[metric(i, requests=20, errors=20 if i == 5 else 0) for i in range(40)]],
        ),
        ("healthy", [deploy(0), *[metric(i, requests=20, errors=0.2) for i in range(40)]]),
        ("after rollback", [deploy(0), deploy(1, "rolled_back"), *bad_traffic(2, 40)]),
    ],
)
def test_no_decision(name: str, events: list[InputEvent]) -> None:
    """Traffic that is not a clearly bad deploy makes no decision."""
    assert run(Engine(rules(ERROR_RULE)), events) == [], name


def test_pre_deploy_traffic_does_not_dilute_the_window() -> None:
    """Healthy samples before the deploy start are outside deploy-scoped windows."""
    events = [metric(i, requests=200, errors=0) for i in range(-9, 0)]
    decisions = run(Engine(rules(ERROR_RULE)), [*events, deploy(0), *bad_traffic(0, 30)])
    assert [d.rule for d in decisions] == ["errors"]


def test_late_deploy_event_backfills_recent_samples() -> None:
    """Samples that arrived before a (slightly late) deploy event count as if it came first."""
    late = run(Engine(rules(ERROR_RULE)), [*bad_traffic(0, 5), deploy(0), *bad_traffic(5, 30)])
    first = run(Engine(rules(ERROR_RULE)), [deploy(0), *bad_traffic(0, 35)])
    # the `for` clock starts at the sample where it would have had the deploy been seen first
    assert late == first
    assert late[0].at_ms == at(12)


@pytest.mark.parametrize("late_by", [1, 3, 20])
def test_a_deploy_caught_up_late_decides_what_it_would_have_decided_first(late_by: int) -> None:
    """Which rule fires first, and when, does not depend on when the deploy event arrives."""
    pack = load_rules(RULES_DIR)

    def recording(deploy_at: int) -> list[InputEvent]:
        stable = [metric(t, cohort="stable", requests=950, errors=4) for t in range(-120, 80)]
        canary = [
            metric(t + 0.5, cohort="canary", requests=50, errors=4, availability=0.92)
            for t in range(80)
        ]
        healthy = [metric(t, cohort="canary", availability=0.996) for t in range(-120, 0, 10)]
        events = sorted([*stable, *canary, *healthy], key=lambda e: e.timestamp)
        start = deploy(0, strategy="canary")
        index = next(i for i, e in enumerate(events) if e.timestamp >= at(deploy_at))
        return [*events[:index], start, *events[index:]]

    def decided(events: list[InputEvent]) -> list[tuple[str, int, str]]:
        return [(d.rule, d.at_ms, d.reason) for d in run(Engine(pack), events)]

    first = decided(recording(0))
    assert first
    assert decided(recording(late_by)) == first


def test_late_events_are_counted_and_ignored() -> None:
    """An event older than watermark - lateness changes nothing and is counted."""
    engine = Engine(rules(ERROR_RULE), allowed_lateness_ms=5_000)
    run(engine, [metric(100, requests=1), metric(90, requests=1), check(80)])
    assert engine.stats.late_events == 2


def test_exact_duplicates_count_once_but_two_instances_both_count() -> None:
    """Identical samples at the same time are one; different ones at that time are two."""
    engine = Engine(rules(ERROR_RULE))
    run(engine, [deploy(0), metric(1, requests=20, errors=1), metric(1, requests=20, errors=1)])
    assert engine.stats.duplicate_events == 1
    run(
        engine,
        [
            metric(1, requests=30, errors=1),
            metric(0.5, requests=30, errors=1),
            metric(0.5, requests=30, errors=1),
        ],
    )
    assert engine.stats.duplicate_events == 2
    assert engine.explain("d1") is not None


def test_series_cap_rejects_new_series() -> None:
    """Beyond max_series, new series are rejected and counted; known ones go on."""
    engine = Engine(rules(ERROR_RULE), max_series=2)
    run(engine, [metric(0, region=r, requests=1) for r in ("a", "b", "c", "a")])
    stats = engine.stats
    assert (stats.tracked_series, stats.series_cap_rejections) == (2, 1)


def test_series_cap_never_starves_a_live_deploy() -> None:
    """At the cap, junk services get no state, but a service with a live deploy is still judged."""
    engine = Engine(rules(ERROR_RULE), max_series=2)
    run(engine, [metric(0, service=f"junk-{i}", requests=1) for i in range(5)])
    assert engine.stats.series_cap_rejections == 3
    assert engine.stats.tracked_series == 2
    decisions = run(
        engine,
        [deploy(0), *[metric(t, requests=40, errors=8) for t in range(1, 90)]],
    )
    assert [d.action for d in decisions] == ["rollback"]
    assert engine.stats.tracked_series == 3


TWO_RULES = (
    ERROR_RULE
    + """
  - name: errors-dry
    metric: error_rate
    window: 10s
    condition: "> 5%"
    min_samples: 2
    action: rollback
    dry_run: true
  - name: errors-pause
    metric: error_rate
    window: 10s
    for: 0s
    condition: "> 5%"
    min_samples: 2
    action: pause
  - name: errors-also
    metric: error_rate
    window: 5s
    condition: "> 4%"
    min_samples: 2
    action: rollback
"""
)


def test_one_rollback_per_deploy_others_join_the_incident() -> None:
    """Many rollback-worthy rules make one rollback; a dry run and a pause come separately."""
    engine = Engine(rules(TWO_RULES))
    decisions = run(engine, [deploy(0), *bad_traffic(0, 40), *bad_traffic(40, 5, region="eu")])
    rollbacks = [d for d in decisions if d.action == "rollback" and not d.dry_run]
    assert [d.rule for d in rollbacks] == ["errors-also"]
    assert [d.rule for d in decisions if d.dry_run] == ["errors-dry"]
    assert [d.action for d in decisions].count("pause") == 1
    explanation = engine.explain("d1")
    assert explanation is not None
    joined = [e["rule"] for e in explanation["incident"] if "reason" in e]
    assert "errors" in joined


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.floats(0, 20)), min_size=1, max_size=120),
    st.integers(0, 3),
)
def test_never_more_than_one_rollback_per_deploy(
    steps: list[tuple[int, float]], restarts: int
) -> None:
    """However metrics and deploys interleave, each deploy gets at most one rollback."""
    events: list[InputEvent] = []
    deploy_no = 0
    for i, (kind, errors) in enumerate(steps):
        if kind == 0 and deploy_no < restarts:
            deploy_no += 1
            events.append(deploy(i, deploy_id=f"d{deploy_no}"))
        else:
            events.append(metric(i, region=f"r{kind}", requests=20, errors=errors))
    decisions = run(Engine(rules(TWO_RULES)), events)
    ids = [d.deploy_id for d in decisions if d.action == "rollback" and not d.dry_run]
    assert len(ids) == len(set(ids))


@settings(max_examples=20, deadline=None)
@given(st.randoms(use_true_random=False))
def test_reordering_within_lateness_gives_the_same_decisions(rnd: random.Random) -> None:
    """Shuffling samples by less than the allowed lateness does not change what is decided."""
    base = [deploy(0), *bad_traffic(0.5, 60)]
    shuffled = sorted(base, key=lambda e: e.timestamp + rnd.uniform(0, 3_000))
    first = run(Engine(rules(ERROR_RULE)), base)
    second = run(Engine(rules(ERROR_RULE)), shuffled)
    assert [(d.rule, d.action, d.deploy_id) for d in first] == [
        (d.rule, d.action, d.deploy_id) for d in second
    ]


def test_duplicates_are_recognised_whatever_the_key_order() -> None:
    """Remembered samples compare and refill the same whether or not their keys keep one order."""

    def events(flip: bool) -> list[InputEvent]:
        def sample(t: float) -> InputEvent:
            return metric(t, errors=5, requests=20) if flip else metric(t, requests=20, errors=5)

        late = [metric(1, requests=20, errors=5), metric(2, requests=20, errors=5)]
        return [sample(1), sample(2), metric(1.5, requests=20), *late, deploy(0)]

    outcomes = []
    for flip in (False, True):
        engine = Engine(rules(ERROR_RULE))
        run(engine, [metric(0.5, requests=1, errors=0)])  # fixes the remembered key order
        decisions = run(engine, [*events(flip), *bad_traffic(3, 30)])
        assert engine.stats.duplicate_events == 2
        outcomes.append([(d.at_ms, d.evidence) for d in decisions])
    assert outcomes[0] == outcomes[1]
    assert outcomes[0]


def test_a_finished_deploy_releases_its_windows() -> None:
    """After a rollback the deploy windows hold nothing until the next deploy refills them."""
    engine = Engine(rules(ERROR_RULE))
    run(engine, [deploy(0), *bad_traffic(0, 5), deploy(5, "rolled_back")])
    state = engine.inspect("checkout", "production")
    assert state is not None
    series = state.series[("us-east", "")]
    assert all(agg.count == 0 and not agg.entries for agg in series.deploy_feeders)
    decisions = run(engine, [*bad_traffic(5, 5), deploy(10, deploy_id="d2"), *bad_traffic(10, 30)])
    assert decisions[0].deploy_id == "d2"


def test_a_rule_that_fails_to_evaluate_is_disabled_and_the_others_keep_judging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An evaluation error disables that rule, records why, and other rules still decide."""
    from guardian.engine import firing

    real = firing.evaluate  # type: ignore[attr-defined]

    def flaky(b: Any, *args: Any) -> Any:
        if b.rule.name == "alert-cpu":
            raise ZeroDivisionError("boom")
        return real(b, *args)

    monkeypatch.setattr(firing, "evaluate", flaky)
    engine = Engine(load_rules(RULES_DIR))
    decisions = run(
        engine,
        [
            deploy(0),
            *[metric(t, requests=40, errors=8, cpu_utilization=0.95) for t in range(1, 400)],
        ],
    )
    assert engine.rule_errors == {"alert-cpu": "ZeroDivisionError: boom"}
    assert "rollback" in {d.action for d in decisions}
    assert "alert-cpu" not in {d.rule for d in decisions}
    engine.swap_rules(load_rules(RULES_DIR))
    assert engine.rule_errors == {}

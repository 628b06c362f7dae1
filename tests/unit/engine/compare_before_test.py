"""``compare: {baseline: before}``: each region against its own traffic before the deploy."""

from __future__ import annotations

import random
from typing import Any

import pytest

from guardian.engine import Engine, decode_snapshot, encode_snapshot
from guardian.engine.decision import Decision
from guardian.engine.rules.loader import RuleError
from guardian.wire.events import InputEvent
from tests.unit.engine.builders import at, deploy, metric, rules, run

BEFORE = """
rules:
  - name: region-errors-stat
    match: {strategy: progressive}
    regions: reached
    metric: error_rate
    compare: {baseline: before, before: 10m, at_least: 2x, plus: 0.5pp}
    action: rollback
  - name: region-p95-stat
    match: {strategy: progressive}
    regions: reached
    metric: latency_p95_ms
    compare: {baseline: before, before: 10m, plus: +20%}
    action: rollback
"""
KEY = ("checkout", "production")


def _region(
    rng: random.Random, *, region: str = "us-east", after_rate: float = 0.005, p95: float = 120.0
) -> list[InputEvent]:
    """10 min before and 10 min after a deploy at 0, every 10 s: 200 requests, binomial errors."""
    out: list[InputEvent] = []
    for second in range(-600, 600, 10):
        rate = 0.005 if second < 0 else after_rate
        errors = sum(rng.random() < rate for _ in range(200))
        shift = p95 if second >= 0 else 120.0
        out.append(
            metric(
                second,
                region=region,
                requests=200,
                errors=errors,
                latency_p95_ms=shift * rng.uniform(0.9, 1.1),
            )
        )
    return out


def _timeline(
    *regions: list[InputEvent], reached: tuple[str, ...] = ("us-east",)
) -> list[InputEvent]:
    events = [e for region in regions for e in region]
    events.append(deploy(0, strategy="progressive", regions=list(reached)))
    return sorted(events, key=lambda e: e.timestamp)


def _key(decisions: list[Decision]) -> list[tuple[str, int, dict[str, object]]]:
    return [(d.rule, d.at_ms, d.evidence) for d in decisions]


def test_a_region_failing_four_times_as_often_as_before_is_rolled_back() -> None:
    """2% errors after the deploy against 0.5% before: rolled back within minutes, with evidence."""
    events = _timeline(_region(random.Random(1), after_rate=0.02))
    decisions = run(Engine(rules(BEFORE)), events)
    assert [(d.rule, d.action) for d in decisions] == [("region-errors-stat", "rollback")]
    decided = decisions[0]
    assert decided.at_ms - events[0].timestamp <= 600_000 + 5 * 60_000
    assert decided.evidence["baseline_kind"] == "before"
    stats = decided.evidence["statistics"]
    assert stats["verdict"] == "worse"
    assert stats["stable"]["requests"] == stats["canary"]["requests"]  # 30 s against 30 s
    assert "than the region 10m before" in decided.reason


def test_a_slower_region_is_rolled_back_by_the_shift_test() -> None:
    """p95 +40% after the deploy: the sign test on 30 s means concludes ``worse``."""
    decisions = run(Engine(rules(BEFORE)), _timeline(_region(random.Random(2), p95=168.0)))
    assert [d.rule for d in decisions] == ["region-p95-stat"]


@pytest.mark.parametrize("seed", range(40))
def test_healthy_regions_are_left_alone(seed: int) -> None:
    """The same traffic before and after, with its noise, rolls nothing back (40 regions)."""
    assert run(Engine(rules(BEFORE)), _timeline(_region(random.Random(seed)))) == []


def test_a_region_not_reached_gives_no_evidence() -> None:
    """Bad traffic in a region the rollout has not reached is not the new version's doing."""
    engine = Engine(rules(BEFORE))
    events = _timeline(
        _region(random.Random(3)), _region(random.Random(4), region="eu-west", after_rate=0.05)
    )
    assert run(engine, events) == []
    st = engine.inspect(*KEY)
    assert st is not None
    assert st.comparisons[("region-errors-stat", "eu-west")].evidence()["updates"] == 0
    assert st.comparisons[("region-errors-stat", "us-east")].evidence()["updates"] > 0


def test_the_test_reads_the_pre_deploy_buckets_the_threshold_rules_keep() -> None:
    """No second store: the region's 30 s baseline buckets hold the measures the tests read."""
    engine = Engine(rules(BEFORE))
    run(engine, _timeline(_region(random.Random(5))))
    st = engine.inspect(*KEY)
    assert st is not None
    assert set(st.baselines) == {"us-east"}
    measures = [tuple(m) for m in st.baselines["us-east"].export().measures]
    assert ("errors", "requests", 0.0) in measures
    assert ("latency_p95_ms", None, None) in measures


@pytest.mark.parametrize("cut", [0.2, 0.5, 0.8])
def test_a_takeover_midway_decides_exactly_as_the_uninterrupted_run(cut: float) -> None:
    """The span being summed and the test's state are saved: the same decision, time, evidence."""
    events = _timeline(_region(random.Random(1), after_rate=0.012))
    whole = run(Engine(rules(BEFORE)), events)
    assert [d.rule for d in whole] == ["region-errors-stat"]
    started = next(i for i, e in enumerate(events) if e.timestamp > at(30))
    decided = next(i for i, e in enumerate(events) if e.timestamp >= whole[0].at_ms)
    assert decided - started > 5
    half = started + int((decided - started) * cut)
    first = Engine(rules(BEFORE))
    assert run(first, events[:half]) == []
    snapshot = first.snapshot(*KEY)
    assert snapshot is not None
    second = Engine(rules(BEFORE))
    second.restore(decode_snapshot(encode_snapshot(snapshot)))
    assert _key(run(second, events[half:])) == _key(whole)


def test_a_reload_changing_the_window_before_restarts_the_test() -> None:
    """``before: 10m`` to ``before: 5m`` compares with other buckets: the evidence starts over."""
    events = _timeline(_region(random.Random(6)))
    engine = Engine(rules(BEFORE))
    run(engine, events[:100])
    engine.swap_rules(rules(BEFORE.replace("before: 10m, at_least", "before: 5m, at_least")))
    st = engine.inspect(*KEY)
    assert st is not None
    assert st.comparisons[("region-errors-stat", "us-east")].evidence()["updates"] == 0
    assert st.comparisons[("region-p95-stat", "us-east")].evidence()["updates"] > 0


@pytest.mark.parametrize(
    ("compare", "message"),
    [
        ("{baseline: before, before: 10s, at_least: 2x}", "greater than or equal to 60000"),
        ("{baseline: stable, at_least: 2x}", "cohort"),
    ],
)
def test_before_needs_a_minute_and_stable_needs_a_cohort(compare: str, message: str) -> None:
    """A window shorter than two buckets is refused; ``before`` needs no cohort, stable does."""
    text = f"""
rules:
  - name: bad
    metric: error_rate
    compare: {compare}
    action: rollback
"""
    with pytest.raises(RuleError, match=message):
        rules(text)


def _region_test(engine: Engine, rule: str = "region-errors-stat") -> dict[str, Any]:
    st = engine.inspect(*KEY)
    assert st is not None
    return st.comparisons[(rule, "us-east")].evidence()


def test_a_region_reached_after_its_window_is_used_up_is_not_judged() -> None:
    """The horizon: with ``before: 10m`` a region reached 12 min in has nothing to compare with."""
    events = [e for e in _region(random.Random(7), after_rate=0.05) if e.timestamp < at(0)]
    events += [metric(s, requests=200, errors=10) for s in range(0, 1200, 10)]
    events.append(deploy(0, strategy="progressive", regions=["eu-west"]))
    events.append(deploy(720, "progressed", strategy="progressive", regions=["eu-west", "us-east"]))
    engine = Engine(rules(BEFORE))
    assert run(engine, sorted(events, key=lambda e: e.timestamp)) == []
    found = _region_test(engine)
    assert found["verdict"] == "inconclusive"
    assert found["updates"] == 0


def test_late_and_incomplete_events_are_no_evidence() -> None:
    """An event for a span already compared, or without requests, changes nothing."""
    events = _timeline(_region(random.Random(8)))
    closing = metric(390, requests=200, errors=1)  # closes the span 360-390 s
    plain = Engine(rules(BEFORE))
    run(plain, [*events[:100], closing])  # up to 380 s after the deploy, then 390 s
    engine = Engine(rules(BEFORE))
    run(engine, events[:100])
    late = metric(300, requests=200, errors=150)  # its span was compared already
    incomplete = metric(381, errors=3)  # errors out of no known number of requests
    run(engine, [late, incomplete, closing])
    found = _region_test(engine)
    assert found["updates"] == 13
    assert found == _region_test(plain)


def test_a_gauge_span_with_another_number_of_samples_is_skipped() -> None:
    """Means of unequally many samples are not compared: the pair is counted as skipped."""
    before = [metric(s, requests=200, latency_p95_ms=120.0) for s in range(-600, 0, 10)]
    after = [metric(s, requests=200, latency_p95_ms=200.0) for s in range(0, 300, 5)]
    engine = Engine(rules(BEFORE))
    events: list[InputEvent] = [*before, deploy(0, strategy="progressive"), *after]
    events.sort(key=lambda e: e.timestamp)
    assert run(engine, events) == []
    found = _region_test(engine, "region-p95-stat")
    assert found["canary"]["samples"] == 0
    assert found["canary"]["skipped"] > 0


def test_tests_of_other_services_start_fresh_after_one_has_evidence() -> None:
    """A test not yet fed holds no evidence of its own, whatever another test has gathered."""
    engine = Engine(rules(BEFORE))
    run(engine, _timeline(_region(random.Random(9), after_rate=0.012)))
    assert _region_test(engine)["updates"] > 0
    quiet_deploy = deploy(10, deploy_id="q1", service="quiet", strategy="progressive")
    run(engine, [metric(5, service="quiet", requests=200, errors=1), quiet_deploy])
    quiet = engine.inspect("quiet", "production")
    assert quiet is not None
    assert quiet.comparisons
    for comparison in quiet.comparisons.values():
        found = comparison.evidence()
        assert found["updates"] == 0
        assert found["started_at_ms"] is None


def test_tests_are_unbound_an_hour_after_their_deploy_and_bound_again_for_the_next() -> None:
    """No test is held for a deploy long over; the next deploy gets fresh ones and is judged."""
    engine = Engine(rules(BEFORE), idle_ttl_ms=7_200_000)
    rng = random.Random(10)
    events = _timeline(_region(rng))
    events.append(deploy(600, "completed", strategy="progressive"))
    quiet = [metric(s, requests=200, errors=1, latency_p95_ms=120.0) for s in range(600, 8000, 60)]
    assert run(engine, [*events, *quiet]) == []
    st = engine.inspect(*KEY)
    assert st is not None
    assert st.comparisons == {}
    assert all(b.comparison is None for s in st.series.values() for b in s.bindings)
    later: list[InputEvent] = [
        deploy(8000, deploy_id="d2", strategy="progressive"),
        *[metric(s, requests=200, errors=20, latency_p95_ms=120.0) for s in range(8000, 8300, 10)],
    ]
    decided = run(engine, later)
    assert [(d.rule, d.deploy.deploy_id if d.deploy else None) for d in decided] == [
        ("region-errors-stat", "d2")
    ]

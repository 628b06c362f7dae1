"""``compare`` rules: an anytime-valid test of the canary against stable, judged per event."""

from __future__ import annotations

import json

import pytest
from ruamel.yaml import YAML

from guardian.engine import Engine
from guardian.engine.decision import Decision
from guardian.engine.rules.loader import RuleError
from guardian.engine.ruletest import RuleTestFile, run_file
from guardian.wire.events import InputEvent, decode_event
from tests.support.canary_recordings import MISSES, Recording, healthy_twin, miss
from tests.unit.engine.builders import deploy, metric, rules, run

COMPARE = """
rules:
  - name: canary-errors-stat
    match: {cohort: canary, strategy: canary}
    metric: error_rate
    compare: {baseline: stable, at_least: 2x, plus: 0.5pp, confidence: 0.99}
    action: rollback
  - name: canary-p95-stat
    match: {cohort: canary, strategy: canary}
    metric: latency_p95_ms
    compare: {baseline: stable, plus: +20%}
    action: rollback
"""
RATE_RULE = {"low_traffic_errors", "half_rps_failing", "five_x_errors"}


def replay(recording: Recording, engine: Engine | None = None) -> list[Decision]:
    """Feed a recording's deploy and events to an engine with the compare rules."""
    engine = engine or Engine(rules(COMPARE))
    events = [recording.deploy, *recording.events]
    events.sort(key=lambda e: e["timestamp"])
    return run(engine, [decode_event(json.dumps(e)) for e in events])


@pytest.mark.parametrize("name", sorted(MISSES))
def test_each_miss_of_issue_15_is_rolled_back_within_five_minutes(name: str) -> None:
    """The four canaries the thresholds miss are rolled back by the right test, early."""
    recording = miss(name, minutes=10, pre_minutes=1)
    decisions = replay(recording)
    assert [d.action for d in decisions] == ["rollback"]
    decided = decisions[0]
    expected = "canary-errors-stat" if name in RATE_RULE else "canary-p95-stat"
    assert decided.rule == expected
    assert decided.at_ms - recording.started_at_ms <= 5 * 60_000
    stats = decided.evidence["statistics"]
    assert stats["verdict"] == "worse"
    assert stats["e_value_worse"] >= 100
    assert stats["canary"]
    assert stats["stable"]
    assert stats["estimates"]
    assert stats["elapsed_ms"] is not None


@pytest.mark.parametrize("name", sorted(MISSES))
def test_healthy_twins_are_left_alone(name: str) -> None:
    """The same traffic with the canary exactly like stable rolls back nothing."""
    assert replay(healthy_twin(name, minutes=30, pre_minutes=1)) == []


def test_one_error_in_the_first_two_requests_rolls_back_nothing() -> None:
    """A low-traffic blip is not evidence: the test needs more than a handful of requests."""
    events: list[InputEvent] = [deploy(0, strategy="canary")]
    for i in range(1, 5):
        events.append(metric(i * 10, cohort="stable", requests=1000, errors=4))
        events.append(metric(i * 10, cohort="canary", requests=1 if i < 3 else 0, errors=i == 1))
    assert run(Engine(rules(COMPARE)), events) == []


def test_explain_reports_the_verdict_and_evidence_so_far() -> None:
    """An inconclusive test is reported with its evidence, never a silent pass."""
    engine = Engine(rules(COMPARE))
    events: list[InputEvent] = [deploy(0, strategy="canary")]
    for i in range(1, 4):
        events.append(metric(i * 10, cohort="stable", requests=1000, errors=4))
        events.append(metric(i * 10, cohort="canary", requests=50, errors=0))
    run(engine, events)
    explained = engine.explain("d1")
    assert explained is not None
    row = next(r for r in explained["rules"] if r["rule"] == "canary-errors-stat")
    assert row["why"].startswith("inconclusive vs stable")
    assert row["statistics"]["test"] == "rates"
    # t=10 and t=20 are in; t=30 is handed over when a later instant begins
    assert row["statistics"]["canary"]["requests"] == 100


def test_a_new_deploy_restarts_the_test() -> None:
    """Evidence gathered on one deploy does not count for the next."""
    recording = miss("low_traffic_errors", minutes=3, pre_minutes=1)
    engine = Engine(rules(COMPARE))
    first = replay(recording, engine)
    assert [d.rule for d in first] == ["canary-errors-stat"]
    state = engine.inspect("checkout", "production")
    assert state is not None
    comparison = state.comparisons[("canary-errors-stat", "us-east")]
    assert comparison.deploy_id == "d-low_traffic_errors"
    comparison.restart("d-next")
    assert comparison.verdict == "inconclusive"


@pytest.mark.parametrize(
    ("compare", "message"),
    [
        ("{baseline: stable}", "smallest effect"),
        ("{at_least: 2x, plus: 5%}", "percentage points"),
        ("{at_least: 0.5x}", "greater than 1"),
        ("{plus: 0.5pp, confidence: 1.5}", "less than 1"),
    ],
)
def test_incoherent_compare_conditions_are_refused(compare: str, message: str) -> None:
    """A compare condition without an effect, or with the wrong unit, is a load error."""
    text = f"""
rules:
  - name: bad
    match: {{cohort: canary}}
    metric: error_rate
    compare: {compare}
    action: rollback
"""
    with pytest.raises(RuleError, match=message):
        rules(text)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("metric: latency_p95_ms\n    compare: {at_least: 2x}", "relative shift"),
        ("metric: error_rate\n    compare: {at_least: 2x}\n    for: 1m", "no 'for'"),
        (
            "metric: error_rate\n    condition: '> 5%'\n    compare: {at_least: 2x}",
            "exactly one",
        ),
    ],
)
def test_compare_rules_take_no_threshold_machinery(extra: str, message: str) -> None:
    """Gauges compare by a shift; compare rules take neither 'for' nor a condition."""
    text = f"""
rules:
  - name: bad
    match: {{cohort: canary}}
    {extra}
    action: rollback
"""
    with pytest.raises(RuleError, match=message):
        rules(text)


def test_compare_needs_a_cohort_other_than_stable() -> None:
    """A compare rule names the cohort it judges."""
    text = """
rules:
  - name: bad
    metric: error_rate
    compare: {at_least: 2x}
    action: rollback
"""
    with pytest.raises(RuleError, match="cohort"):
        rules(text)


RULE_TESTS = """
rule_files: [inline]
tests:
  - name: a canary failing 5x as often as stable at 20 req/s is rolled back
    defaults: {service: cart, environment: production}
    deploys:
      - {type: started, deploy_id: c1, strategy: canary, regions: [us-east], at: 0}
    series:
      - series: {region: us-east, cohort: stable}
        interval: 10s
        values: {requests: "1000x60", errors: "poisson(4)x60"}
      - series: {region: us-east, cohort: canary}
        interval: 10s
        values: {requests: "200x60", errors: "poisson(4)x60"}
    expect:
      - {rule: canary-errors-stat, action: rollback, at_before: 5m, deploy_id: c1}
  - name: a canary like stable, with the same noise, is left alone
    defaults: {service: cart, environment: production}
    deploys:
      - {type: started, deploy_id: c1, strategy: canary, regions: [us-east], at: 0}
    series:
      - series: {region: us-east, cohort: stable}
        interval: 10s
        values: {requests: "1000x180", errors: "poisson(4)x180", latency_p95_ms: "120~10%x180"}
      - series: {region: us-east, cohort: canary}
        interval: 10s
        values: {requests: "200x180", errors: "poisson(0.8)x180", latency_p95_ms: "120~10%x180"}
    expect_none: true
"""


def test_rules_test_accepts_compare_rules_and_cases() -> None:
    """``guardian rules test`` runs compare rules: a bad canary rolls back, a healthy one not."""
    test_file = RuleTestFile.model_validate(YAML(typ="safe").load(RULE_TESTS))
    results = run_file(rules(COMPARE), test_file)
    assert [(r.name, r.ok, r.problems) for r in results] == [
        (case.name, True, []) for case in test_file.tests
    ]


def test_a_restored_engine_carries_the_test_on() -> None:
    """Tests are in snapshots: a restored replica goes on from the evidence saved."""
    recording = miss("slow_p95", minutes=10, pre_minutes=1)
    events = sorted([recording.deploy, *recording.events], key=lambda e: e["timestamp"])
    decoded = [decode_event(json.dumps(e)) for e in events]
    half = next(
        i for i, e in enumerate(events) if e["timestamp"] > recording.started_at_ms + 30_000
    )
    first = Engine(rules(COMPARE))
    assert run(first, decoded[:half]) == []
    snapshot = first.snapshot("checkout", "production")
    assert snapshot is not None
    restored = Engine(rules(COMPARE))
    restored.restore(snapshot)
    decisions = run(restored, decoded[half:])
    assert [d.rule for d in decisions] == ["canary-p95-stat"]
    assert decisions[0].evidence["statistics"]["started_at_ms"] < recording.started_at_ms + 30_000


def test_glitched_counts_are_skipped_not_fatal() -> None:
    """A negative p95 (a broken exporter) is no evidence and no crash."""
    engine = Engine(rules(COMPARE))
    events: list[InputEvent] = [deploy(0, strategy="canary")]
    for i in range(1, 4):
        events.append(metric(i * 10, cohort="stable", requests=100, latency_p95_ms=-1))
        events.append(metric(i * 10, cohort="canary", requests=100, latency_p95_ms=-5))
    assert run(engine, events) == []
    assert engine.rule_errors == {}
    state = engine.inspect("checkout", "production")
    assert state is not None
    assert state.comparisons[("canary-p95-stat", "us-east")].evidence()["updates"] == 0

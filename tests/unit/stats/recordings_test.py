"""The four misses of issue 15 as recordings: valid v1 events, seeded, and caught by the tests."""

from __future__ import annotations

import json
import math
import random
import statistics

import pytest

from guardian.stats import CountPairing, LatestSample, RateTest, ShiftTest
from guardian.wire.events import DeployEvent, MetricEvent, decode_event
from tests.support.canary_recordings import (
    MISSES,
    Recording,
    healthy_twin,
    miss,
    sample_p95,
)


def judge(recording: Recording) -> tuple[str, int | None, str, int | None]:
    """Run both tests over a recording's deploy: (rates verdict, at, shift verdict, at)."""
    rates, shift = RateTest(min_ratio=2.0, min_increase=0.005), ShiftTest()
    rate_state, shift_state = rates.start(), shift.start()
    pairing, reference = CountPairing(), LatestSample()
    for event in recording.events:
        at_ms = event["timestamp"]
        if at_ms <= recording.started_at_ms:
            continue
        values, cohort = event["values"], event["cohort"]
        pair = pairing.add(cohort, values["requests"], values["errors"], at_ms)
        if pair is not None:
            rates.update(rate_state, *pair, at_ms)
        p95 = values.get("latency_p95_ms")
        if p95 is None:
            continue
        if cohort == "stable":
            reference.set(p95, at_ms, values["requests"])
        elif (stable := reference.fresh(at_ms, 10_000)) is not None:
            shift.update(shift_state, p95, stable[0], at_ms, values["requests"], stable[1])
    return rate_state.verdict, rate_state.worse_at_ms, shift_state.verdict, shift_state.worse_at_ms


@pytest.mark.parametrize("name", sorted(MISSES))
def test_recordings_are_v1_metric_events(name: str) -> None:
    """Every event decodes as a v1 metric event of the canary or stable cohort."""
    recording = miss(name, minutes=5, pre_minutes=1)
    decoded = [decode_event(json.dumps(e)) for e in recording.events]
    assert all(isinstance(e, MetricEvent) for e in decoded)
    assert {e.cohort for e in decoded if isinstance(e, MetricEvent)} == {"canary", "stable"}
    assert isinstance(decode_event(json.dumps(recording.deploy)), DeployEvent)


def test_recordings_are_seeded() -> None:
    """The same seed gives the same events, another seed other noise."""
    assert miss("five_x_errors", seed=1).events == miss("five_x_errors", seed=1).events
    assert miss("five_x_errors", seed=1).events != miss("five_x_errors", seed=2).events


@pytest.mark.parametrize(
    ("name", "test"),
    [
        ("low_traffic_errors", "rates"),
        ("half_rps_failing", "rates"),
        ("five_x_errors", "rates"),
        ("slow_p95", "shift"),
    ],
)
def test_each_miss_is_rolled_back_within_five_minutes(name: str, test: str) -> None:
    """The statistical tests call every miss worse within 5 minutes of the deploy's start."""
    for seed in range(5):
        recording = miss(name, seed=seed, minutes=10)
        rates, rates_at, shift, shift_at = judge(recording)
        verdict, at_ms = (rates, rates_at) if test == "rates" else (shift, shift_at)
        assert verdict == "worse"
        assert at_ms is not None
        assert at_ms - recording.started_at_ms <= 5 * 60_000


@pytest.mark.parametrize("name", sorted(MISSES))
def test_healthy_twins_are_not_rolled_back(name: str) -> None:
    """The same traffic with the canary like stable is never called worse by either test."""
    for seed in range(3):
        rates, _, shift, _ = judge(healthy_twin(name, seed=seed, minutes=30))
        assert "worse" not in (rates, shift)


def test_sampled_p95_is_the_p95_of_the_sampled_requests() -> None:
    """The beta draw matches sorting n lognormal latencies and reading rank ceil(0.95 n)."""
    rng = random.Random(5)
    n, median = 30, 120.0 / math.exp(0.55 * 1.6448536269514722)
    rank = math.ceil(0.95 * n) - 1
    direct = [
        sorted(rng.lognormvariate(math.log(median), 0.55) for _ in range(n))[rank]
        for _ in range(3000)
    ]
    drawn = [sample_p95(rng, n, 120.0) for _ in range(3000)]
    assert statistics.median(drawn) == pytest.approx(statistics.median(direct), rel=0.03)
    assert statistics.quantiles(drawn, n=10)[0] == pytest.approx(
        statistics.quantiles(direct, n=10)[0], rel=0.04
    )
    assert statistics.quantiles(drawn, n=10)[-1] == pytest.approx(
        statistics.quantiles(direct, n=10)[-1], rel=0.05
    )

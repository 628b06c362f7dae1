"""Quantiles as Prometheus' histogram_quantile computes them; contributions summed into events."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from guardian.inputs.assemble import Conversion, EventAssembler, check_identity, histogram_quantile

INF = math.inf


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        # Values checked against Prometheus' promql/quantile.go rules.
        pytest.param(0.5, {0.1: 50, 0.2: 100, INF: 100}, 0.1, id="on a bound"),
        pytest.param(0.75, {0.1: 50, 0.2: 100, INF: 100}, 0.15, id="interpolated"),
        pytest.param(0.25, {0.1: 50, 0.2: 100, INF: 100}, 0.05, id="first bucket from 0"),
        pytest.param(0.99, {0.1: 10, 0.2: 20, INF: 100}, 0.2, id="in +Inf: second-highest bound"),
        pytest.param(0.5, {-1.0: 10, 0.0: 20, INF: 20}, -1.0, id="first bound <= 0 is returned"),
        pytest.param(0.5, {0.1: 60, 0.2: 40, INF: 100}, 0.1 * (50 / 60), id="non-monotonic"),
        pytest.param(0.5, {0.1: 0, INF: 0}, math.nan, id="no observations"),
        pytest.param(0.5, {0.1: 5, 0.2: 10}, math.nan, id="no +Inf bucket"),
        pytest.param(0.5, {INF: 10}, math.nan, id="one bucket"),
        pytest.param(math.nan, {0.1: 5, INF: 10}, math.nan, id="NaN quantile"),
        pytest.param(0.0, {0.1: 0, INF: 10}, math.nan, id="q=0 on an empty first bucket"),
        pytest.param(0.5, {}, math.nan, id="empty"),
    ],
)
def test_histogram_quantile(q: float, buckets: dict[float, float], expected: float) -> None:
    """histogram_quantile's interpolation, edge cases included."""
    found = histogram_quantile(q, buckets)
    if math.isnan(expected):
        assert math.isnan(found)
    else:
        assert found == pytest.approx(expected)


IDENT = ("checkout", "production", "us-east", "canary", "2.4.1")


def test_contributions_at_one_time_become_one_event() -> None:
    """Requests, errors, buckets and values of one identity and timestamp merge."""
    assembler = EventAssembler((("latency_p95_ms", 0.95),))
    assembler.requests(IDENT, 1000, 90, error=False)
    assembler.requests(IDENT, 1000, 10, error=True)
    assembler.bucket(IDENT, 1000, "h", 1000.0, 0.1, 50)
    assembler.bucket(IDENT, 1000, "h", 1000.0, 0.1, 50)
    assembler.buckets(IDENT, 1000, "h", 1000.0, (0.2, INF), (100, 100))
    assembler.value(IDENT, 1000, "cpu_utilization", 0.4, counter=False)
    assembler.value(IDENT, 1000, "cpu_utilization", 0.6, counter=False)
    assembler.value(IDENT, 1000, "gc", 2, counter=True)
    assembler.value(IDENT, 1000, "gc", 3, counter=True)
    assembler.requests(IDENT, 2000, 0, error=False)
    events = assembler.events(Counter())
    assert [e.timestamp for e in events] == [1000, 2000]
    first = events[0]
    assert (first.service, first.environment, first.region, first.cohort, first.version) == IDENT
    assert first.values == {
        "requests": 100,
        "errors": 10,
        "cpu_utilization": pytest.approx(0.5),
        "gc": 5,
        "latency_p95_ms": pytest.approx(95.0),
    }
    assert events[1].values == {"requests": 0, "errors": 0}


def test_histograms_with_the_same_bounds_add_up_and_others_merge_by_bound() -> None:
    """Two SDK points share bounds (fast path); a third with other bounds still counts."""
    assembler = EventAssembler((("p50", 0.5),))
    assembler.buckets(IDENT, 1000, "h", 1.0, (10.0, 20.0, INF), (10, 10, 10))
    assembler.buckets(IDENT, 1000, "h", 1.0, (10.0, 20.0, INF), (0, 10, 10))
    assembler.buckets(IDENT, 1000, "h", 1.0, (15.0, INF), (0, 20))
    # cumulative by bound: 10 → 10, 15 → 10, 20 → 20 (envelope), +Inf → 40
    assert assembler.events(Counter())[0].values["p50"] == pytest.approx(20.0)


def test_an_event_over_the_values_limit_is_counted_not_written() -> None:
    """v1 allows 64 values per event."""
    assembler = EventAssembler(())
    for i in range(70):
        assembler.value(IDENT, 1000, f"v{i}", 1.0, counter=False)
    skipped: Counter[str] = Counter()
    assert assembler.events(skipped) == []
    assert skipped == {"too_many_values": 1}


def test_a_gauge_that_overflows_is_counted_not_written() -> None:
    """Two huge gauges sum to infinity: not a finite v1 value."""
    assembler = EventAssembler(())
    assembler.value(IDENT, 1000, "g", 1.7e308, counter=True)
    assembler.value(IDENT, 1000, "g", 1.7e308, counter=True)
    skipped: Counter[str] = Counter()
    assert assembler.events(skipped) == []
    assert skipped == {"not_finite": 1}


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (("s", "prod", None, None, None), ("s", "prod", None, None, None)),
        (("s", "prod", "", "stable", ""), ("s", "prod", None, "stable", None)),
        ((None, "prod", None, None, None), "no_service"),
        (("s", None, None, None, None), "no_environment"),
        (("s", "prod", None, "blue", None), "unknown_cohort"),
        (("s", "prod", "r" * 300, None, None), "label_too_long"),
    ],
)
def test_identity_checks(labels: tuple[str | None, ...], expected: object) -> None:
    """v1 requires a service and environment, a known cohort and labels of at most 256."""
    assert check_identity(*labels) == expected


def test_rejection_reason_names_only_what_the_producer_must_fix() -> None:
    """Unmapped metrics are expected; missing services are not."""
    conversion = Conversion(samples=10, skipped=Counter({"unmapped_metric": 5}))
    assert conversion.rejection_reason() is None
    conversion.skipped.update({"no_service": 3, "not_finite": 1})
    assert conversion.rejection_reason() == "4 of 10 samples not mapped: no_service=3, not_finite=1"

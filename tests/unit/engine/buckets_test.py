"""Baseline buckets hold columns only for the measures a series sends, with the same sums."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from guardian.engine.window import BUCKET_MS, BucketContents, BucketSet

MEASURES: list[tuple[str, str | None, float | None]] = [
    ("latency_p95_ms", None, None),
    ("latency_p99_ms", None, None),
    ("availability", None, None),
    ("errors", "requests", 0.0),
]
KEYS = ("latency_p95_ms", "latency_p99_ms", "availability", "errors", "requests")
RETENTION_MS = 10 * BUCKET_MS

events_st = st.lists(
    st.tuples(
        st.integers(0, 30 * BUCKET_MS),
        st.dictionaries(st.sampled_from(KEYS), st.floats(0, 1000, allow_nan=False), max_size=5),
    ),
    max_size=60,
)


def every_column() -> BucketSet:
    """A set holding columns for every measure from the start (how it always was)."""
    buckets = BucketSet(MEASURES, RETENTION_MS)
    buckets.hold_all()
    return buckets


@given(events_st)
def test_lazy_columns_sum_exactly_as_every_column_would(
    events: list[tuple[int, dict[str, float]]],
) -> None:
    """Whatever measures the events carry, and when they first appear, sums are identical."""
    lazy, full = BucketSet(MEASURES, RETENTION_MS), every_column()
    for ts, values in sorted(events, key=lambda e: e[0]):
        lazy.feed(ts, values)
        full.feed(ts, values)
        newest = ts
        for measure in MEASURES:
            lo, hi = newest - 5 * BUCKET_MS, newest
            assert lazy.query(measure, lo, hi) == full.query(measure, lo, hi)
    assert lazy.export() == full.export()


def test_a_set_holds_no_column_for_a_measure_never_sent() -> None:
    """Only p95 is sent: one column, and the others read as empty."""
    buckets = BucketSet(MEASURES, RETENTION_MS)
    buckets.feed(BUCKET_MS, {"latency_p95_ms": 120.0, "cpu": 0.4})
    assert len(buckets.nums) == buckets.size
    assert len(buckets.dens) == 0
    assert buckets.query(MEASURES[1], 0, 3 * BUCKET_MS) == (0.0, 0.0, 0)
    assert buckets.query(MEASURES[0], 0, 3 * BUCKET_MS) == (120.0, 0.0, 1)


def test_a_snapshot_shows_every_measure_and_loads_back() -> None:
    """Export writes every measure's columns (zeros if never sent); a load restores the sums."""
    buckets = BucketSet(MEASURES, RETENTION_MS)
    buckets.feed(BUCKET_MS, {"errors": 2.0, "requests": 50.0})
    saved = buckets.export()
    assert isinstance(saved, BucketContents)
    assert len(saved.nums) == buckets.size * len(MEASURES)
    assert len(saved.dens) == buckets.size
    restored = BucketSet(MEASURES, RETENTION_MS)
    assert restored.load(saved)
    assert restored.query(MEASURES[3], 0, 3 * BUCKET_MS) == (2.0, 50.0, 1)
    assert restored.export() == saved

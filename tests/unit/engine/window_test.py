"""Window arithmetic: incremental aggregates agree with recomputing from scratch."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardian.engine.ring import RingSet
from guardian.engine.window import (
    BUCKET_MS,
    BucketSet,
    RingAggregate,
    SlidingAggregate,
    percentile,
)

samples = st.lists(
    st.tuples(st.integers(0, 120_000), st.floats(0, 1000), st.floats(1, 1000)), max_size=60
)


@given(samples, st.integers(1_000, 60_000))
def test_sliding_sums_match_brute_force(data: list[tuple[int, float, float]], window: int) -> None:
    """Whatever the arrival order, the window holds exactly the samples in (now-W, now]."""
    agg = SlidingAggregate("n", "d", None, window)
    now = 0
    fed = []
    for ts, num, den in data:
        now = max(now, ts)
        agg.feed(ts, {"n": num, "d": den}, now)
        if ts > now - window:
            fed.append((ts, num, den))
    agg.evict(now - window)
    inside = [s for s in fed if s[0] > now - window]
    assert agg.count == len(inside)
    assert agg.sum_num == pytest.approx(sum(s[1] for s in inside), abs=1e-6)
    assert agg.sum_den == pytest.approx(sum(s[2] for s in inside), abs=1e-6)
    assert [e[0] for e in agg.samples()] == sorted(e[0] for e in agg.samples())


@pytest.mark.parametrize(
    ("aggregate", "expected"),
    [
        ("mean", 2.0),
        ("sum", 6.0),
        ("count", 3.0),
        ("min", 1.0),
        ("max", 3.0),
        ("p50", 2.0),
        ("p99", 3.0),
        ("ratio", 6.0 / 30.0),
    ],
)
def test_aggregates(aggregate: str, expected: float) -> None:
    """Each aggregate reads the window as its name says."""
    agg = SlidingAggregate("n", "d", None, 10_000)
    for ts, n in ((1, 1.0), (2, 2.0), (3, 3.0)):
        agg.feed(ts, {"n": n, "d": 10.0}, ts)
    assert agg.value(aggregate) == pytest.approx(expected)


def test_empty_and_zero_denominator_are_undefined() -> None:
    """No samples, or a ratio over nothing, is undefined rather than zero."""
    agg = SlidingAggregate("n", "d", 0.0, 10_000)
    assert agg.value("mean") is None
    agg.feed(1, {"d": 0.0}, 1)
    assert agg.value("ratio") is None
    agg.feed(2, {"n": 1.0}, 2)  # no denominator: not this measure's sample
    assert agg.count == 1


def test_samples_too_old_for_the_window_are_dropped() -> None:
    """A late sample already outside the window never enters it."""
    agg = SlidingAggregate("n", None, None, 1_000)
    agg.feed(5_000, {"n": 1.0}, 5_000)
    agg.feed(3_000, {"n": 9.0}, 5_000)
    assert agg.count == 1
    agg.clear()
    assert agg.count == 0
    assert agg.value("mean") is None


@given(st.lists(st.integers(1, 100), min_size=1, max_size=50), st.integers(1, 99))
def test_percentile_is_an_observed_value_with_enough_below(nums: list[int], pct: int) -> None:
    """The nearest-rank percentile is an element with at least pct% of values at or below."""
    p = percentile([float(n) for n in nums], pct)
    assert p in nums
    assert sum(1 for n in nums if n <= p) * 100 >= pct * len(nums)


@given(st.lists(st.tuples(st.integers(0, 600_000), st.floats(0, 100)), max_size=80))
def test_buckets_sum_whole_buckets_in_range(data: list[tuple[int, float]]) -> None:
    """A baseline query sums exactly the samples of the whole buckets inside [lo, hi)."""
    store = BucketSet([("n", None, None)], 10 * 60_000)
    kept = []
    for ts, n in data:
        store.feed(ts, {"n": n})
        kept.append((ts, n))
    lo, hi = 100_000, 400_000
    num, _, count = store.query(("n", None, None), lo, hi)
    # buckets of 10 s; the ring keeps 10 minutes, which covers the whole range here
    inside = [
        (t, n) for t, n in kept if lo <= t - t % BUCKET_MS and t - t % BUCKET_MS + BUCKET_MS <= hi
    ]
    assert count == len(inside)
    assert num == pytest.approx(sum(n for _, n in inside), abs=1e-6)


def test_buckets_expire_and_ignore_too_old() -> None:
    """The ring forgets buckets beyond its retention and ignores samples older than it holds."""
    ratio = ("n", "d", 0.0)
    store = BucketSet([ratio, ("m", None, None)], 20_000)  # 3 slots
    store.feed(0, {"d": 1.0})
    store.feed(30_000, {"n": 2.0, "d": 1.0, "m": 5.0})  # overwrites slot 0
    store.feed(0, {"d": 5.0})  # older than the slot holds: ignored
    store.feed(1, {"n": 1.0})  # no denominator: not a sample
    assert store.query(ratio, 0, 100_000) == (2.0, 1.0, 1)
    assert store.query(("m", None, None), 0, 100_000) == (5.0, 0.0, 1)
    assert store.query(("x", None, None), 0, 100_000) == (0.0, 0.0, 0)


@given(samples, st.integers(60_000, 600_000))
def test_ring_matches_exact_window_at_bucket_resolution(
    data: list[tuple[int, float, float]], window: int
) -> None:
    """A ring holds what the exact window holds, give or take its oldest bucket edge."""
    ring = RingAggregate("n", "d", None, window)
    exact = SlidingAggregate("n", "d", None, window)
    now = 0
    for ts, num, den in data:
        now = max(now, ts)
        ring.feed(ts, {"n": num, "d": den}, now)
        exact.feed(ts, {"n": num, "d": den}, now)
    ring.evict(now - window)
    exact.evict(now - window)
    bucket = ring.bucket_ms
    edge = (now - window) // bucket * bucket + bucket  # ring starts at this bucket
    inside = [e for e in exact.samples() if e[0] >= edge]
    assert ring.count == len(inside)
    assert ring.sum_num == pytest.approx(sum(e[1] for e in inside), abs=1e-6)
    assert ring.sum_den == pytest.approx(sum(e[2] for e in inside), abs=1e-6)


@pytest.mark.parametrize(
    ("aggregate", "expected"), [("mean", 2.0), ("sum", 6.0), ("count", 3.0), ("ratio", 0.2)]
)
def test_ring_aggregates(aggregate: str, expected: float) -> None:
    """A ring reads means, sums, counts and ratios; empty or clearing gives undefined."""
    ring = RingAggregate("n", "d", None, 60_000)
    assert ring.value(aggregate) is None
    for ts, n in ((1_000, 1.0), (2_000, 2.0), (3_000, 3.0)):
        ring.feed(ts, {"n": n, "d": 10.0}, ts)
    ring.feed(4_000, {"n": 1.0}, 4_000)  # no denominator: not a sample
    ring.feed(4_000, {"d": 1.0}, 4_000 + 10 * 60_000)  # far older than the window
    assert ring.value(aggregate) == pytest.approx(expected)
    ring.evict(10 * 60_000)  # long silence: everything leaves
    assert ring.value(aggregate) is None
    ring.feed(700_000, {"n": 1.0, "d": 0.0}, 700_000)
    assert ring.value("ratio") is None
    ring.clear()
    assert ring.count == 0


measured = st.lists(
    st.tuples(
        st.integers(0, 900_000),
        st.one_of(st.none(), st.floats(0, 1000)),
        st.one_of(st.none(), st.floats(1, 1000)),
        st.one_of(st.none(), st.floats(0, 1000)),
    ),
    max_size=80,
)


class ReferenceRing:
    """One measure in one ring, with every array updated in place: the plain algorithm."""

    def __init__(self, num_key: str, den_key: str | None, window_ms: int) -> None:
        self.num_key, self.den_key, self.window_ms = num_key, den_key, window_ms
        self.bucket_ms = window_ms // 30
        self.size = window_ms // self.bucket_ms + 2
        self.starts = [-1] * self.size
        self.nums, self.dens, self.counts = [0.0] * self.size, [0.0] * self.size, [0] * self.size
        self.oldest, self.sum_num, self.sum_den, self.count = -1, 0.0, 0.0, 0

    def feed(self, ts: int, values: dict[str, float], now: int) -> None:
        num = values.get(self.num_key, 0.0 if self.den_key else None)
        den = values.get(self.den_key) if self.den_key else 0.0
        if (
            num is None
            or den is None
            or ts // self.bucket_ms <= (now - self.window_ms) // self.bucket_ms
        ):
            return
        self.evict(now - self.window_ms)
        bucket = ts // self.bucket_ms
        slot = bucket % self.size
        if self.starts[slot] != bucket:
            self.starts[slot], self.nums[slot], self.dens[slot], self.counts[slot] = (
                bucket,
                0.0,
                0.0,
                0,
            )
        self.nums[slot] += num
        self.dens[slot] += den
        self.counts[slot] += 1
        self.sum_num += num
        self.sum_den += den
        self.count += 1
        if self.oldest < 0 or bucket < self.oldest:
            self.oldest = bucket

    def evict(self, cutoff: int) -> None:
        low = cutoff // self.bucket_ms + 1
        if self.oldest < 0 or self.oldest >= low:
            return
        if low - self.oldest >= self.size:
            self.starts = [-1] * self.size
            self.oldest, self.sum_num, self.sum_den, self.count = -1, 0.0, 0.0, 0
            return
        while self.oldest < low:
            slot = self.oldest % self.size
            if self.starts[slot] == self.oldest:
                self.sum_num -= self.nums[slot]
                self.sum_den -= self.dens[slot]
                self.count -= self.counts[slot]
                self.starts[slot] = -1
            self.oldest += 1
        if self.count <= 0:
            self.sum_num, self.sum_den, self.count = 0.0, 0.0, 0


@given(measured, st.integers(60_000, 300_000))
def test_ring_set_matches_one_plain_ring_per_measure(
    data: list[tuple[int, float | None, float | None, float | None]], window: int
) -> None:
    """Measures sharing one ring (with its cursor) read, to the bit, what plain rings read.

    A shared ring slides on every event, a plain one only on events carrying its
    measure; both slide before being read, and then agree exactly.
    """
    shared = RingSet(window)
    measures = [("n", "d", 0.0), ("m", None, None), ("d", None, None)]
    columns = [shared.column(m) for m in measures]
    plain = [ReferenceRing(m[0], m[1], window) for m in measures]
    now = 0
    for i, (ts, n, d, m) in enumerate(data):
        values = {k: v for k, v in (("n", n), ("d", d), ("m", m)) if v is not None}
        now = max(now, ts)
        shared.feed(ts, values, now)
        for ring in plain:
            ring.feed(ts, values, now)
        if i % 3:
            continue
        for col, ring in zip(columns, plain, strict=True):  # a read slides the window first
            ring.evict(now - window)
            col.evict(now - window)
            assert (col.count, col.sum_num, col.sum_den) == (ring.count, ring.sum_num, ring.sum_den)
    assert shared.column(measures[1]) is columns[1]
    assert columns[0].window_ms == window


def test_ring_keeps_a_bucket_it_returns_to() -> None:
    """Feeding an older bucket again after a newer one adds to what it already held."""
    ring = RingAggregate("n", None, None, 60_000)
    for ts in (1_000, 5_000, 1_500, 9_000):
        ring.feed(ts, {"n": 1.0}, 9_000)
    assert ring.value("count") == 4.0
    ring.evict(2_500)  # the first bucket (0-2 s) leaves, the others stay
    assert ring.value("sum") == 2.0


def test_sliding_window_releases_its_samples() -> None:
    """An emptied or cleared window gives its memory back and refills on the next sample."""
    agg = SlidingAggregate("n", None, None, 1_000)
    agg.feed(0, {"n": 1.0}, 0)
    agg.evict(5_000)
    assert not agg.entries
    assert agg.count == 0
    agg.feed(6_000, {"n": 2.0}, 6_000)
    assert agg.value("sum") == 2.0
    agg.clear()
    agg.feed(7_000, {"n": 3.0}, 7_000)
    assert agg.value("sum") == 3.0

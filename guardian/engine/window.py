"""Event-time window arithmetic: sliding aggregates and coarse baseline buckets.

``SlidingAggregate`` keeps the samples of one series for one measure inside a
sliding window ``(cutoff, now]`` with running sums, so adding a sample and
reading a mean, sum, count or ratio are O(1) (amortised); min, max and
percentiles scan the window. Out-of-order samples are inserted in timestamp
order. ``BucketSet`` keeps 30-second buckets of the same sums for long
look-backs (the 30-minute pre-deploy baseline) in bounded memory (``BucketSet``).

Limits: eviction is monotonic (a cutoff never moves back), which holds
because event time only moves forward per service and a deploy start only
moves later; running float sums are reset whenever a window empties so rounding
error cannot accumulate forever.
"""

from __future__ import annotations

from array import array
from bisect import insort
from collections import deque

BUCKET_MS = 30_000  # baseline resolution: the bucket holding the deploy start is left out


class SlidingAggregate:
    """Samples ``(ts, num, den)`` in ``(cutoff, now]`` with running sums."""

    __slots__ = (
        "count",
        "den_key",
        "entries",
        "num_default",
        "num_key",
        "sum_den",
        "sum_num",
        "window_ms",
    )

    def __init__(
        self, num_key: str, den_key: str | None, num_default: float | None, window_ms: int
    ) -> None:
        self.window_ms = window_ms
        self.num_key = num_key
        self.den_key = den_key
        self.num_default = num_default
        self.entries: deque[tuple[int, float, float]] = deque()
        self.sum_num = 0.0
        self.sum_den = 0.0
        self.count = 0

    def feed(self, ts: int, values: dict[str, float], now: int) -> None:
        """Take this measure's numbers from one event, then slide the window to ``now``."""
        num = values.get(self.num_key, self.num_default)
        if num is None:
            return
        den = 0.0
        if self.den_key is not None:
            got = values.get(self.den_key)
            if got is None:
                return
            den = got
        cutoff = now - self.window_ms
        if ts <= cutoff:
            return
        entries = self.entries
        if not entries or ts >= entries[-1][0]:
            entries.append((ts, num, den))
        else:
            insort(entries, (ts, num, den))
        self.sum_num += num
        self.sum_den += den
        self.count += 1
        if entries[0][0] <= cutoff:
            self.evict(cutoff)

    def clear(self) -> None:
        """Forget every sample."""
        self.entries.clear()
        self.sum_num = self.sum_den = 0.0
        self.count = 0

    def evict(self, cutoff: int) -> None:
        """Drop samples at or before ``cutoff``."""
        entries = self.entries
        while entries and entries[0][0] <= cutoff:
            _, num, den = entries.popleft()
            self.sum_num -= num
            self.sum_den -= den
            self.count -= 1
        if not entries:
            self.sum_num = self.sum_den = 0.0
            self.count = 0

    def value(self, aggregate: str) -> float | None:  # noqa: PLR0911 - one return per aggregate
        """The window's aggregate, or None when it is undefined (empty, zero denominator)."""
        if self.count == 0:
            return None
        if aggregate == "ratio":
            return self.sum_num / self.sum_den if self.sum_den > 0 else None
        if aggregate == "mean":
            return self.sum_num / self.count
        if aggregate == "sum":
            return self.sum_num
        if aggregate == "count":
            return float(self.count)
        nums = [e[1] for e in self.entries]
        if aggregate == "min":
            return min(nums)
        if aggregate == "max":
            return max(nums)
        return percentile(nums, int(aggregate[1:]))


def percentile(nums: list[float], pct: int) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(nums)
    rank = max(1, -(-pct * len(ordered) // 100))
    return ordered[min(rank, len(ordered)) - 1]


class BucketSet:
    """Sums of several measures in 30-second buckets over ``retention_ms``, in flat arrays.

    One ring per region: a slot holds one bucket start and, for each measure,
    (num sum, den sum, count). A sample for a newer bucket overwrites the slot,
    which is also how old buckets expire. Flat arrays keep thousands of these
    out of the garbage collector's sight, and one call feeds every measure.
    """

    __slots__ = ("counts", "dens", "index", "measures", "nums", "size", "starts", "zeros")

    def __init__(
        self, measures: list[tuple[str, str | None, float | None]], retention_ms: int
    ) -> None:
        width = len(measures)
        self.measures = [(m[0], m[1], m[2], i) for i, m in enumerate(measures)]
        self.index = {m: i for i, m in enumerate(measures)}
        self.size = size = retention_ms // BUCKET_MS + 1
        self.starts = array("q", [-1]) * size
        self.nums = array("d", [0.0]) * (size * width)
        self.dens = array("d", [0.0]) * (size * width)
        self.counts = array("q", [0]) * (size * width)
        self.zeros = (array("d", [0.0]) * width, array("q", [0]) * width)

    def feed(self, ts: int, values: dict[str, float]) -> None:
        """Add one event's numbers to its bucket, for every measure it carries."""
        index = ts // BUCKET_MS
        slot = index % self.size
        start = index * BUCKET_MS
        width = len(self.measures)
        base = slot * width
        held = self.starts[slot]
        if held != start:
            if held > start:
                return  # older than the ring holds; too late to matter for any baseline
            self.starts[slot] = start
            zeros, izeros = self.zeros
            self.nums[base : base + width] = zeros
            self.dens[base : base + width] = zeros
            self.counts[base : base + width] = izeros
        nums, dens, counts = self.nums, self.dens, self.counts
        for num_key, den_key, default, i in self.measures:
            num = values.get(num_key, default)
            if num is None:
                continue
            den = 0.0
            if den_key is not None:
                got = values.get(den_key)
                if got is None:
                    continue
                den = got
            j = base + i
            nums[j] += num
            dens[j] += den
            counts[j] += 1

    def query(
        self, measure: tuple[str, str | None, float | None], lo: int, hi: int
    ) -> tuple[float, float, int]:
        """One measure's sums over the buckets lying wholly inside ``[lo, hi)``."""
        i = self.index.get(measure)
        num = den = 0.0
        count = 0
        if i is None:
            return num, den, count
        width = len(self.measures)
        for slot, start in enumerate(self.starts):
            if start >= lo and start + BUCKET_MS <= hi:
                j = slot * width + i
                num += self.nums[j]
                den += self.dens[j]
                count += self.counts[j]
        return num, den, count

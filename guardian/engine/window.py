"""Event-time window arithmetic: sliding aggregates and coarse baseline buckets.

``SlidingAggregate`` keeps the samples of one series for one measure inside a
sliding window ``(cutoff, now]`` with running sums, so adding a sample and
reading a mean, sum, count or ratio are O(1) (amortised); min, max and
percentiles scan the window. Out-of-order samples are inserted in timestamp
order. ``BucketAggregate`` keeps 10-second buckets of the same sums for long
look-backs (the 30-minute pre-deploy baseline) in bounded memory.

Limits: eviction is monotonic (a cutoff never moves back), which holds
because event time only moves forward per service and a deploy start only
moves later; running float sums are reset whenever a window empties so rounding
error cannot accumulate forever.
"""

from __future__ import annotations

from bisect import insort
from collections import deque

BUCKET_MS = 10_000


class SlidingAggregate:
    """Samples ``(ts, num, den)`` in ``(cutoff, now]`` with running sums."""

    __slots__ = ("count", "den_key", "entries", "num_default", "num_key", "sum_den", "sum_num")

    def __init__(self, num_key: str, den_key: str | None, num_default: float | None) -> None:
        self.num_key = num_key
        self.den_key = den_key
        self.num_default = num_default
        self.entries: deque[tuple[int, float, float]] = deque()
        self.sum_num = 0.0
        self.sum_den = 0.0
        self.count = 0

    def feed(self, ts: int, values: dict[str, float]) -> None:
        """Take this measure's numbers from one event's values, if it carries them."""
        num = values.get(self.num_key, self.num_default)
        if num is None:
            return
        den = 0.0
        if self.den_key is not None:
            got = values.get(self.den_key)
            if got is None:
                return
            den = got
        self.add(ts, num, den)

    def add(self, ts: int, num: float, den: float) -> None:
        """Insert one sample, keeping timestamp order."""
        entries = self.entries
        if not entries or ts >= entries[-1][0]:
            entries.append((ts, num, den))
        else:
            insort(entries, (ts, num, den))
        self.sum_num += num
        self.sum_den += den
        self.count += 1

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

    def value(self, aggregate: str) -> float | None:
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


class BucketAggregate:
    """Sums in 10-second buckets, kept for ``retention_ms`` behind the newest sample."""

    __slots__ = ("buckets", "den_key", "num_default", "num_key", "retention_ms")

    def __init__(
        self, num_key: str, den_key: str | None, num_default: float | None, retention_ms: int
    ) -> None:
        self.num_key = num_key
        self.den_key = den_key
        self.num_default = num_default
        self.retention_ms = retention_ms
        # bucket start → [num sum, den sum, sample count]
        self.buckets: dict[int, list[float]] = {}

    def feed(self, ts: int, values: dict[str, float]) -> None:
        """Add one event's numbers to its bucket."""
        num = values.get(self.num_key, self.num_default)
        if num is None:
            return
        den = 0.0
        if self.den_key is not None:
            got = values.get(self.den_key)
            if got is None:
                return
            den = got
        start = ts - ts % BUCKET_MS
        bucket = self.buckets.get(start)
        if bucket is None:
            self.buckets[start] = [num, den, 1.0]
            self._expire(start)
        else:
            bucket[0] += num
            bucket[1] += den
            bucket[2] += 1.0

    def _expire(self, newest: int) -> None:
        horizon = newest - self.retention_ms
        for start in [s for s in self.buckets if s < horizon]:
            del self.buckets[start]

    def query(self, lo: int, hi: int) -> tuple[float, float, int]:
        """Sums of the buckets lying wholly inside ``[lo, hi)``: (num, den, samples)."""
        num = den = 0.0
        count = 0
        for start, (n, d, c) in self.buckets.items():
            if start >= lo and start + BUCKET_MS <= hi:
                num += n
                den += d
                count += int(c)
        return num, den, count

"""Event-time window arithmetic: sliding aggregates and coarse baseline buckets.

``SlidingAggregate`` keeps the samples of one series for one measure inside a
sliding window ``(cutoff, now]`` with running sums, so adding a sample and
reading a mean, sum, count or ratio are O(1) (amortised); min, max and
percentiles scan the window. Out-of-order samples are inserted in timestamp
order; a window holds no array until its first sample and gives it back when
it empties (most deploy-scoped windows are empty most of the time).
``BucketSet`` (``buckets.py``, re-exported here) keeps 30-second buckets of
the same sums for long look-backs (the 30-minute pre-deploy baseline) in
bounded memory. Long always-on windows that only need sums live in ``ring.py``.

Limits: eviction is monotonic (a cutoff never moves back), which holds
because event time only moves forward per service and a deploy start only
moves later; running float sums are reset whenever a window empties so rounding
error cannot accumulate forever.
"""

from __future__ import annotations

from array import array

from guardian.engine.buckets import BUCKET_MS, BucketContents, BucketSet
from guardian.engine.ring import RingAggregate, RingColumn

__all__ = [
    "BUCKET_MS",
    "RING_AGGREGATES",
    "BucketContents",
    "BucketSet",
    "RingAggregate",
    "SlidingAggregate",
    "Window",
]

# The entries of every empty window; never appended to.
_EMPTY = array("d")


class SlidingAggregate:
    """Samples ``(ts, num, den)`` in ``(cutoff, now]`` with running sums.

    The samples live in one flat float array, ``ts, num, den`` after one
    another in time order (event times are below 2**53, so exact as floats),
    from ``head`` on: 24 bytes a sample and no object per sample. Eviction
    moves ``head`` and compacts once half the array is behind it.
    """

    __slots__ = (
        "count",
        "den_key",
        "entries",
        "head",
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
        # Shared and empty until the first sample: most deploy windows stay empty.
        self.entries: array[float] = _EMPTY
        self.head = 0  # index of the oldest sample's time in ``entries``
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
        if entries is _EMPTY:
            entries = self.entries = array("d")
        if not entries or ts >= entries[-3]:
            entries.append(ts)
            entries.append(num)
            entries.append(den)
        else:
            self._insert(ts, num, den)
        self.sum_num += num
        self.sum_den += den
        self.count += 1
        if entries[self.head] <= cutoff:
            self.evict(cutoff)

    def _insert(self, ts: int, num: float, den: float) -> None:
        """Out of order: after every sample that sorts at or before ``(ts, num, den)``."""
        entries = self.entries
        new = (ts, num, den)
        i = len(entries)
        while i > self.head and (entries[i - 3], entries[i - 2], entries[i - 1]) > new:
            i -= 3
        entries[i:i] = array("d", new)

    def clear(self) -> None:
        """Forget every sample (and the memory that held them)."""
        self.entries = _EMPTY
        self.head = 0
        self.sum_num = self.sum_den = 0.0
        self.count = 0

    def samples(self) -> list[tuple[int, float, float]]:
        """The samples held, oldest first (for a snapshot)."""
        entries = self.entries
        return [
            (int(entries[i]), entries[i + 1], entries[i + 2])
            for i in range(self.head, len(entries), 3)
        ]

    def load(self, samples: list[tuple[int, float, float]]) -> None:
        """Replace the samples held (from a snapshot), recomputing the running sums."""
        self.clear()
        if samples:
            self.entries = array("d", [x for sample in samples for x in sample])
            for _, num, den in samples:
                self.sum_num += num
                self.sum_den += den
            self.count = len(samples)

    def evict(self, cutoff: int) -> None:
        """Drop samples at or before ``cutoff``."""
        entries = self.entries
        head, end = self.head, len(entries)
        while head < end and entries[head] <= cutoff:
            self.sum_num -= entries[head + 1]
            self.sum_den -= entries[head + 2]
            self.count -= 1
            head += 3
        if head >= end:
            self.entries = _EMPTY
            self.head = 0
            self.sum_num = self.sum_den = 0.0
            self.count = 0
        elif head * 2 > end:
            del entries[:head]
            self.head = 0
        else:
            self.head = head

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
        nums = self.entries[self.head + 1 :: 3].tolist()
        if aggregate == "min":
            return min(nums)
        if aggregate == "max":
            return max(nums)
        return percentile(nums, int(aggregate[1:]))


Window = SlidingAggregate | RingColumn
# Aggregates a ring can serve; the others need the samples themselves.
RING_AGGREGATES = frozenset({"mean", "sum", "count", "ratio"})


def percentile(nums: list[float], pct: int) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(nums)
    rank = max(1, -(-pct * len(ordered) // 100))
    return ordered[min(rank, len(ordered)) - 1]

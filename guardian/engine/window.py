"""Event-time window arithmetic: sliding aggregates and coarse baseline buckets.

``SlidingAggregate`` keeps the samples of one series for one measure inside a
sliding window ``(cutoff, now]`` with running sums, so adding a sample and
reading a mean, sum, count or ratio are O(1) (amortised); min, max and
percentiles scan the window. Out-of-order samples are inserted in timestamp
order; a window holds no array until its first sample and gives it back when
it empties (most deploy-scoped windows are empty most of the time).
``BucketSet`` keeps 30-second buckets of the same sums for long look-backs
(the 30-minute pre-deploy baseline) in bounded memory. Long always-on windows
that only need sums live in ``ring.py``.

Limits: eviction is monotonic (a cutoff never moves back), which holds
because event time only moves forward per service and a deploy start only
moves later; running float sums are reset whenever a window empties so rounding
error cannot accumulate forever.
"""

from __future__ import annotations

from array import array

import msgspec

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

BUCKET_MS = 30_000  # baseline resolution: the bucket holding the deploy start is left out


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


class BucketContents(msgspec.Struct):
    """What a ``BucketSet`` holds, as plain lists (a snapshot's baseline of one region)."""

    measures: list[tuple[str, str | None, float | None]]
    starts: list[int]
    nums: list[float]
    dens: list[float]  # ratio measures only
    counts: list[int]


MeasureLayout = tuple[
    list[tuple[str, str | None, float | None, int, int]],
    dict[tuple[str, str | None, float | None], int],
    int,
]
# One layout per measure list, shared by every BucketSet of it (one per service and region):
# a fleet has a handful of measure lists, and each copy would cost ~750 bytes per region.
_LAYOUTS: dict[tuple[tuple[str, str | None, float | None], ...], MeasureLayout] = {}


def _layout(measures: list[tuple[str, str | None, float | None]]) -> MeasureLayout:
    """(num key, den key, default, index, den index) per measure, the index by measure, ratios."""
    key = tuple(measures)
    found = _LAYOUTS.get(key)
    if found is None:
        # Only ratio measures keep denominators.
        ratios = [i for i, m in enumerate(measures) if m[1] is not None]
        rows = [
            (m[0], m[1], m[2], i, ratios.index(i) if m[1] is not None else -1)
            for i, m in enumerate(measures)
        ]
        found = _LAYOUTS[key] = (rows, {m: i for i, m in enumerate(measures)}, len(ratios))
    return found


class BucketSet:
    """Sums of several measures in 30-second buckets over ``retention_ms``, in flat arrays.

    One ring per region: a slot holds one bucket start and, for each measure,
    (num sum, den sum, count). A sample for a newer bucket overwrites the slot,
    which is also how old buckets expire. Flat arrays keep thousands of these
    out of the garbage collector's sight, and one call feeds every measure.
    The bucket being filled lives in plain lists (the cursor) and is written
    back when another bucket is fed or the arrays are read; sums are the same.
    """

    __slots__ = (
        "counts",
        "cur",
        "cur_counts",
        "cur_dens",
        "cur_nums",
        "cur_slot",
        "dens",
        "dwidth",
        "index",
        "measures",
        "nums",
        "size",
        "starts",
    )

    def __init__(
        self, measures: list[tuple[str, str | None, float | None]], retention_ms: int
    ) -> None:
        width = len(measures)
        self.measures, self.index, self.dwidth = _layout(measures)
        dwidth = self.dwidth
        self.size = size = retention_ms // BUCKET_MS + 1
        self.starts = array("q", [-1]) * size
        self.nums = array("d", [0.0]) * (size * width)
        self.dens = array("d", [0.0]) * (size * dwidth)
        self.counts = array("i", [0]) * (size * width)
        self.cur = -1  # bucket start held by the cursor, -1 if none
        self.cur_slot = 0
        self.cur_nums = [0.0] * width
        self.cur_dens = [0.0] * dwidth
        self.cur_counts = [0] * width

    def flush(self) -> None:
        """Write the cursor's bucket back to the arrays (before reading or saving them)."""
        if self.cur >= 0:
            width = len(self.measures)
            base = self.cur_slot * width
            self.nums[base : base + width] = array("d", self.cur_nums)
            self.counts[base : base + width] = array("i", self.cur_counts)
            dwidth = self.dwidth
            base = self.cur_slot * dwidth
            self.dens[base : base + dwidth] = array("d", self.cur_dens)

    def export(self) -> BucketContents:
        """Everything held, cursor included (for a snapshot)."""
        self.flush()
        return BucketContents(
            measures=[m[:3] for m in self.measures],
            starts=self.starts.tolist(),
            nums=self.nums.tolist(),
            dens=self.dens.tolist(),
            counts=self.counts.tolist(),
        )

    def load(self, contents: BucketContents) -> bool:
        """Take over saved buckets if they have this set's shape; False (and no change) if not.

        A reload may have changed which measures the rules need or how far back
        they look; buckets of another shape are then left out and refill.
        """
        same = [tuple(m) for m in contents.measures] == [m[:3] for m in self.measures]
        shape = (len(contents.starts), len(contents.dens), len(contents.nums))
        if not same or shape != (self.size, len(self.dens), len(self.nums)):
            return False
        self.starts = array("q", contents.starts)
        self.nums = array("d", contents.nums)
        self.dens = array("d", contents.dens)
        self.counts = array("i", contents.counts)
        self.cur = -1  # the cursor's bucket is in the arrays now
        return True

    def _move(self, index: int) -> bool:
        """Point the cursor at bucket ``index``; False if it is older than the ring holds."""
        slot = index % self.size
        start = index * BUCKET_MS
        held = self.starts[slot]
        if held > start:
            return False  # older than the ring holds; too late to matter for any baseline
        self.flush()
        width, dwidth = len(self.measures), self.dwidth
        self.cur, self.cur_slot = start, slot
        if held != start:
            self.starts[slot] = start
            self.cur_nums = [0.0] * width
            self.cur_dens = [0.0] * dwidth
            self.cur_counts = [0] * width
        else:
            base = slot * width
            self.cur_nums = self.nums[base : base + width].tolist()
            self.cur_counts = self.counts[base : base + width].tolist()
            self.cur_dens = self.dens[slot * dwidth : (slot + 1) * dwidth].tolist()
        return True

    def feed(self, ts: int, values: dict[str, float]) -> None:
        """Add one event's numbers to its bucket, for every measure it carries."""
        index = ts // BUCKET_MS
        if index * BUCKET_MS != self.cur and not self._move(index):
            return
        nums, dens, counts = self.cur_nums, self.cur_dens, self.cur_counts
        get = values.get
        for num_key, den_key, default, i, j in self.measures:
            num = get(num_key, default)
            if num is None:
                continue
            if den_key is not None:
                den = get(den_key)
                if den is None:
                    continue
                dens[j] += den
            nums[i] += num
            counts[i] += 1

    def query(
        self, measure: tuple[str, str | None, float | None], lo: int, hi: int
    ) -> tuple[float, float, int]:
        """One measure's sums over the buckets lying wholly inside ``[lo, hi)``."""
        i = self.index.get(measure)
        self.flush()
        num = den = 0.0
        count = 0
        if i is None:
            return num, den, count
        width, dwidth = len(self.measures), self.dwidth
        d = self.measures[i][4]
        for slot, start in enumerate(self.starts):
            if start >= lo and start + BUCKET_MS <= hi:
                j = slot * width + i
                num += self.nums[j]
                if d >= 0:
                    den += self.dens[slot * dwidth + d]
                count += self.counts[j]
        return num, den, count

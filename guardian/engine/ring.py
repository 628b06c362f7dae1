"""Long sliding windows at bucket resolution, one ring per series and window length.

A ``RingSet`` keeps, for every measure some rule reads over the same window
length, the sums of ``(num, den, count)`` in ``window/30`` buckets in three
flat arrays shared by its measures, with running totals per measure. One
``feed`` call per event updates every measure (the always-on 5-minute alert
windows of a series share one ring). A ``RingColumn`` is one measure's view,
read like a ``SlidingAggregate`` (``count``, ``sum_num``, ``sum_den``,
``value``, ``evict``).

Limits: only mean, sum, count and ratio (no samples are kept); the window's
oldest edge is rounded to a bucket, so it may cover up to 1/30 less than its
nominal length. Per measure, the running sums see the same additions and
subtractions in the same order as one ring per measure would, so merging
changes no value.
"""

from __future__ import annotations

from array import array
from typing import Any, ClassVar

from guardian.engine.rules.compiled import MeasureKey


class RingColumn:
    """One measure of a ``RingSet``: its buckets and running sums."""

    # Never holds exact samples; kept so readers can treat every window alike.
    entries: ClassVar[tuple[()]] = ()
    head: ClassVar[int] = 0

    __slots__ = (
        "base",
        "count",
        "dbase",
        "den_key",
        "num_default",
        "num_key",
        "pend_count",
        "pend_den",
        "pend_num",
        "ring",
        "sum_den",
        "sum_num",
    )

    def __init__(self, ring: RingSet, measure: MeasureKey) -> None:
        self.ring = ring
        self.num_key, self.den_key, self.num_default = measure
        # Where this measure's buckets start in the ring's arrays (set by ``RingSet.keep``);
        # -1 until then. ``dbase`` is -1 for a measure without a denominator.
        self.base = self.dbase = -1
        self.sum_num = self.sum_den = 0.0
        self.count = 0
        # The ring's current bucket, kept out of the arrays while it fills.
        self.pend_num = self.pend_den = 0.0
        self.pend_count = 0

    @property
    def bucket_ms(self) -> int:
        """The ring's bucket length."""
        return self.ring.bucket_ms

    @property
    def window_ms(self) -> int:
        """The ring's window length."""
        return self.ring.window_ms

    def feed(self, ts: int, values: dict[str, Any], now: int) -> None:
        """Feed the whole ring (every measure) with one event."""
        self.ring.feed(ts, values, now)

    def evict(self, cutoff: int) -> None:
        """Slide the whole ring to ``cutoff``."""
        ring = self.ring
        low = cutoff // ring.bucket_ms + 1
        if 0 <= ring.oldest < low:
            ring.evict(low)

    def clear(self) -> None:
        """Forget every sample of the whole ring."""
        self.ring.clear()

    def value(self, aggregate: str) -> float | None:
        """The window's mean, sum, count or ratio; None when undefined."""
        if self.count == 0:
            return None
        if aggregate == "ratio":
            return self.sum_num / self.sum_den if self.sum_den > 0 else None
        if aggregate == "sum":
            return self.sum_num
        if aggregate == "count":
            return float(self.count)
        return self.sum_num / self.count


class RingSet:
    """Buckets of several measures over one window length, fed once per event.

    The bucket being filled (the cursor) lives in plain attributes of each
    column and is written to the arrays when another bucket is fed or the
    window slides; per bucket the sums are the same as if added in place.
    """

    __slots__ = (
        "bucket_ms",
        "columns",
        "counts",
        "cur",
        "cur_slot",
        "dens",
        "nums",
        "oldest",
        "plan",
        "size",
        "starts",
        "window_ms",
    )

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self.bucket_ms = max(1, window_ms // 30)
        self.size = size = window_ms // self.bucket_ms + 2
        self.starts = array("q", [-1]) * size  # bucket index held by each slot
        self.oldest = -1  # oldest bucket index that may be held
        self.cur = -1  # bucket index held by the cursor, -1 if none
        self.cur_slot = 0
        self.columns: list[RingColumn] = []
        # Every column's buckets in three flat arrays, one run of ``size`` per column
        # (``dens``: ratio columns only), rather than three small arrays per column.
        self.nums = array("d")
        self.counts = array("i")
        self.dens = array("d")
        # (num key, default, den key, column) per column, unpacked faster than attributes.
        self.plan: list[tuple[str, float | None, str | None, RingColumn]] = []

    def column(self, measure: MeasureKey) -> RingColumn:
        """The view of ``measure``, added (empty, fed from now on) if new."""
        for col in self.columns:
            if (col.num_key, col.den_key, col.num_default) == measure:
                return col
        col = RingColumn(self, measure)
        self.keep([*self.columns, col])
        return col

    def keep(self, columns: list[RingColumn]) -> None:
        """Feed exactly these columns from now on (a new one starts with empty buckets)."""
        self.flush()
        size = self.size
        ratios = [c for c in columns if c.den_key is not None]
        nums = array("d", [0.0]) * (size * len(columns))
        counts = array("i", [0]) * (size * len(columns))
        dens = array("d", [0.0]) * (size * len(ratios))
        for index, col in enumerate(columns):
            base = index * size
            dbase = ratios.index(col) * size if col.den_key is not None else -1
            if col.base >= 0:  # held before: its buckets move along
                nums[base : base + size] = self.nums[col.base : col.base + size]
                counts[base : base + size] = self.counts[col.base : col.base + size]
                if dbase >= 0:
                    dens[dbase : dbase + size] = self.dens[col.dbase : col.dbase + size]
            col.base, col.dbase = base, dbase
        self.nums, self.counts, self.dens = nums, counts, dens
        self.columns = columns
        self.plan = [(c.num_key, c.num_default, c.den_key, c) for c in columns]

    def flush(self) -> None:
        """Write the cursor's bucket to the arrays and drop the cursor."""
        if self.cur >= 0:
            self._advance(-1, -1)

    def feed(self, ts: int, values: dict[str, Any], now: int) -> None:
        """Add one event's numbers to its bucket for every measure, then slide to ``now``."""
        bms = self.bucket_ms
        bucket = ts // bms
        low = (now - self.window_ms) // bms + 1
        if bucket < low:
            return
        if bucket != self.cur or 0 <= self.oldest < low:
            self._advance(bucket, low)
        get = values.get
        for num_key, default, den_key, col in self.plan:
            num = get(num_key, default)
            if num is None:
                continue
            if den_key is not None:
                den = get(den_key)
                if den is None:
                    continue
                col.pend_den += den
                col.sum_den += den
            col.pend_num += num
            col.pend_count += 1
            col.sum_num += num
            col.count += 1

    def evict(self, low: int) -> None:
        """Drop the buckets older than bucket index ``low``."""
        self._advance(-1, low)

    def _advance(self, bucket: int, low: int) -> None:  # noqa: PLR0912, PLR0915 - one pass
        """Write the cursor back, drop buckets older than ``low``, aim the cursor at ``bucket``.

        ``bucket`` -1 leaves no cursor. All three steps run in one pass over the
        columns; per column they happen in that order, as separate calls would.
        """
        starts, size = self.starts, self.size
        flush = self.cur_slot if self.cur >= 0 else -1
        oldest = self.oldest
        walked = cleared = False
        gone: list[int] = []
        if 0 <= oldest < low:
            walked = True
            if low - oldest >= size:  # every held bucket is older than the window
                cleared = True
                starts[:] = array("q", [-1]) * size
                self.oldest = -1
            else:
                for index in range(oldest, low):
                    slot = index % size
                    if starts[slot] == index:
                        gone.append(slot)
                        starts[slot] = -1
                self.oldest = low
        slot = fresh = -1
        if bucket >= 0:
            slot = bucket % size
            fresh = starts[slot] != bucket
            if fresh:
                starts[slot] = bucket
            if self.oldest < 0 or bucket < self.oldest:
                self.oldest = bucket
        self.cur, self.cur_slot = bucket, max(slot, 0)
        nums, counts, dens = self.nums, self.counts, self.dens
        for col in self.columns:
            base, dbase = col.base, col.dbase
            if flush >= 0:
                nums[base + flush] = col.pend_num
                counts[base + flush] = col.pend_count
                if dbase >= 0:
                    dens[dbase + flush] = col.pend_den
            if cleared:
                col.sum_num = col.sum_den = 0.0
                col.count = 0
            elif walked:
                for gone_slot in gone:
                    col.sum_num -= nums[base + gone_slot]
                    if dbase >= 0:
                        col.sum_den -= dens[dbase + gone_slot]
                    col.count -= counts[base + gone_slot]
                if col.count <= 0:
                    col.sum_num = col.sum_den = 0.0
                    col.count = 0
            if fresh is True:
                col.pend_num = col.pend_den = 0.0
                col.pend_count = 0
            elif slot >= 0:
                col.pend_num = nums[base + slot]
                col.pend_count = counts[base + slot]
                col.pend_den = dens[dbase + slot] if dbase >= 0 else 0.0

    def clear(self) -> None:
        """Forget every sample."""
        self.starts[:] = array("q", [-1]) * self.size
        self.oldest = -1
        self.cur = -1
        for col in self.columns:
            col.sum_num = col.sum_den = 0.0
            col.count = 0


def RingAggregate(  # noqa: N802 - reads like the one-measure window class it stands for
    num_key: str, den_key: str | None, num_default: float | None, window_ms: int
) -> RingColumn:
    """A ring holding a single measure (for tests and one-off windows)."""
    return RingSet(window_ms).column((num_key, den_key, num_default))

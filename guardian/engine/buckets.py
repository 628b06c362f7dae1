"""Pre-deploy baseline buckets: 30-second sums of the measures a pack's baselines read.

``BucketSet`` keeps, per (service, region), the sums ``(num, den, count)`` of
every pre-deploy baseline measure in 30-second buckets over the longest
look-back the rules need (plus the allowed lateness), in flat arrays. A
measure gets its columns when the first event carrying it arrives, so a
service that never sends, say, p99 latency holds no p99 buckets.
``BucketContents`` is what a snapshot saves of it (every measure, zeros for
those never sent). Layouts (which measure sits where) are shared by every
set of the same measures.

Limits: sums are per bucket, so a look-back starts and ends on bucket edges
(the bucket holding the deploy start is left out); a sample older than the
oldest bucket held is dropped.
"""

from __future__ import annotations

from array import array

import msgspec

BUCKET_MS = 30_000  # baseline resolution: the bucket holding the deploy start is left out


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


class _Columns:
    """Which of a layout's measures a BucketSet holds columns for, and where (shared)."""

    __slots__ = ("absent", "active", "cols", "dcols", "dwidth", "present", "width")

    def __init__(
        self, rows: list[tuple[str, str | None, float | None, int, int]], present: tuple[int, ...]
    ) -> None:
        self.present = present
        ratios = [i for i in present if rows[i][1] is not None]
        self.cols = tuple(present.index(i) if i in present else -1 for i in range(len(rows)))
        self.dcols = tuple(ratios.index(i) if i in ratios else -1 for i in range(len(rows)))
        # Feed rows: (num key, den key, default, column, den column) of the measures held.
        self.active = tuple(
            (rows[i][0], rows[i][1], rows[i][2], self.cols[i], self.dcols[i]) for i in present
        )
        # (num key, den key, default, measure index) of the measures not seen yet.
        self.absent = tuple(r[:4] for r in rows if r[3] not in present)
        self.width, self.dwidth = len(present), len(ratios)


_COLUMNS: dict[tuple[int, tuple[int, ...]], _Columns] = {}


def _columns(
    rows: list[tuple[str, str | None, float | None, int, int]], present: tuple[int, ...]
) -> _Columns:
    """The shared ``_Columns`` of ``rows`` (a shared layout, so its id is stable) with these."""
    key = (id(rows), present)
    found = _COLUMNS.get(key)
    if found is None:
        found = _COLUMNS[key] = _Columns(rows, present)
    return found


class BucketSet:
    """Sums of several measures in 30-second buckets over ``retention_ms``, in flat arrays.

    One ring per region: a slot holds one bucket start and, for each measure,
    (num sum, den sum, count). A sample for a newer bucket overwrites the slot,
    which is also how old buckets expire. Flat arrays keep thousands of these
    out of the garbage collector's sight, and one call feeds every measure.
    The bucket being filled lives in plain lists (the cursor) and is written
    back when another bucket is fed or the arrays are read; sums are the same.

    A measure gets its columns when the first event carrying it arrives (many
    services never send some of the measures a pack's baselines could read);
    until then its sums are the zeros its columns would hold, and a snapshot
    shows them so (``export`` writes every measure).
    """

    __slots__ = (
        "columns",
        "counts",
        "cur",
        "cur_counts",
        "cur_dens",
        "cur_nums",
        "cur_slot",
        "dens",
        "index",
        "measures",
        "nums",
        "size",
        "starts",
    )

    def __init__(
        self, measures: list[tuple[str, str | None, float | None]], retention_ms: int
    ) -> None:
        self.measures, self.index, _ = _layout(measures)
        self.columns = _columns(self.measures, ())
        self.size = retention_ms // BUCKET_MS + 1
        self.starts = array("q", [-1]) * self.size
        self.nums = array("d")
        self.dens = array("d")
        self.counts = array("i")
        self.cur = -1  # bucket start held by the cursor, -1 if none
        self.cur_slot = 0
        self.cur_nums: list[float] = []
        self.cur_dens: list[float] = []
        self.cur_counts: list[int] = []

    def flush(self) -> None:
        """Write the cursor's bucket back to the arrays (before reading or saving them)."""
        if self.cur >= 0:
            width, dwidth = self.columns.width, self.columns.dwidth
            base = self.cur_slot * width
            self.nums[base : base + width] = array("d", self.cur_nums)
            self.counts[base : base + width] = array("i", self.cur_counts)
            base = self.cur_slot * dwidth
            self.dens[base : base + dwidth] = array("d", self.cur_dens)

    def _hold(self, present: tuple[int, ...]) -> None:
        """Hold columns for exactly the measures ``present`` (a superset of those held)."""
        self.flush()
        old, new = self.columns, _columns(self.measures, present)
        size = self.size
        nums = array("d", [0.0]) * (size * new.width)
        counts = array("i", [0]) * (size * new.width)
        dens = array("d", [0.0]) * (size * new.dwidth)
        for i in old.present:
            col, ncol = old.cols[i], new.cols[i]
            nums[ncol :: new.width] = self.nums[col :: old.width]
            counts[ncol :: new.width] = self.counts[col :: old.width]
            if old.dcols[i] >= 0:
                dens[new.dcols[i] :: new.dwidth] = self.dens[old.dcols[i] :: old.dwidth]
        self.nums, self.counts, self.dens, self.columns = nums, counts, dens, new
        slot, width, dwidth = self.cur_slot, new.width, new.dwidth
        if self.cur >= 0:
            self.cur_nums = nums[slot * width : (slot + 1) * width].tolist()
            self.cur_counts = counts[slot * width : (slot + 1) * width].tolist()
            self.cur_dens = dens[slot * dwidth : (slot + 1) * dwidth].tolist()
        else:
            self.cur_nums, self.cur_counts, self.cur_dens = (
                [0.0] * width,
                [0] * width,
                [0.0] * dwidth,
            )

    def hold_all(self) -> None:
        """Hold columns for every measure from now on (as before they were made lazily)."""
        self._hold(tuple(range(len(self.measures))))

    def export(self) -> BucketContents:
        """Everything held, cursor included, every measure (for a snapshot)."""
        self.flush()
        held, size = self.columns, self.size
        width, ratios = len(self.measures), sum(1 for m in self.measures if m[1] is not None)
        nums = [0.0] * (size * width)
        counts = [0] * (size * width)
        dens = [0.0] * (size * ratios)
        for i in held.present:
            nums[i::width] = self.nums[held.cols[i] :: held.width].tolist()
            counts[i::width] = self.counts[held.cols[i] :: held.width].tolist()
            j = self.measures[i][4]
            if j >= 0:
                dens[j::ratios] = self.dens[held.dcols[i] :: held.dwidth].tolist()
        return BucketContents(
            measures=[m[:3] for m in self.measures],
            starts=self.starts.tolist(),
            nums=nums,
            dens=dens,
            counts=counts,
        )

    def load(self, contents: BucketContents) -> bool:
        """Take over saved buckets if they have this set's shape; False (and no change) if not.

        A reload may have changed which measures the rules need or how far back
        they look; buckets of another shape are then left out and refill.
        Every measure is held after a load.
        """
        width = len(self.measures)
        ratios = sum(1 for m in self.measures if m[1] is not None)
        same = [tuple(m) for m in contents.measures] == [m[:3] for m in self.measures]
        shape = (len(contents.starts), len(contents.dens), len(contents.nums))
        if not same or shape != (self.size, self.size * ratios, self.size * width):
            return False
        self.columns = _columns(self.measures, tuple(range(width)))
        self.starts = array("q", contents.starts)
        self.nums = array("d", contents.nums)
        self.dens = array("d", contents.dens)
        self.counts = array("i", contents.counts)
        self.cur = -1  # the cursor's bucket is in the arrays now
        self.cur_nums, self.cur_counts, self.cur_dens = [0.0] * width, [0] * width, [0.0] * ratios
        return True

    def _move(self, index: int) -> bool:
        """Point the cursor at bucket ``index``; False if it is older than the ring holds."""
        slot = index % self.size
        start = index * BUCKET_MS
        held = self.starts[slot]
        if held > start:
            return False  # older than the ring holds; too late to matter for any baseline
        self.flush()
        width, dwidth = self.columns.width, self.columns.dwidth
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

    def _admit(self, values: dict[str, float]) -> None:
        """Give columns to the measures not held yet that this event carries."""
        get = values.get
        new = [
            i
            for num_key, den_key, default, i in self.columns.absent
            if get(num_key, default) is not None and (den_key is None or get(den_key) is not None)
        ]
        if new:
            self._hold(tuple(sorted((*self.columns.present, *new))))

    def feed(self, ts: int, values: dict[str, float]) -> None:
        """Add one event's numbers to its bucket, for every measure it carries."""
        index = ts // BUCKET_MS
        if index * BUCKET_MS != self.cur and not self._move(index):
            return
        if self.columns.absent:
            self._admit(values)
        nums, dens, counts = self.cur_nums, self.cur_dens, self.cur_counts
        get = values.get
        for num_key, den_key, default, i, j in self.columns.active:
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
        index = self.index.get(measure)
        self.flush()
        num = den = 0.0
        count = 0
        if index is None:
            return num, den, count
        held = self.columns
        i, d = held.cols[index], held.dcols[index]
        if i < 0:
            return num, den, count  # never carried: its buckets would all be zero
        width, dwidth = held.width, held.dwidth
        for slot, start in enumerate(self.starts):
            if start >= lo and start + BUCKET_MS <= hi:
                j = slot * width + i
                num += self.nums[j]
                if d >= 0:
                    den += self.dens[slot * dwidth + d]
                count += self.counts[j]
        return num, den, count

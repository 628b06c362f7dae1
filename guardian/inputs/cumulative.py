"""Cumulative counters into per-interval increments, with resets detected and memory bounded.

A Prometheus counter or an OTLP cumulative sum/histogram says "total since
the process started"; rules want "how many in this interval". ``SeriesState``
keeps the last point of each series and answers the increment since it:

- the first point of a series is its baseline (no increment), unless the
  caller knows the series started after the converter did (an OTLP start
  time), in which case all of it is new;
- a value that goes down, or a new start time, is a restart: the increment is
  the new value (what was counted since the restart), never a negative rate;
- a point no newer than the last one is a duplicate or out of order: no
  increment (counted in ``out_of_order``);
- a gap longer than ``max_interval_ms`` starts a new baseline, so a series
  that comes back after a long silence does not put everything it counted
  meanwhile into one interval.

Memory is bounded: at most ``max_series`` series are remembered; the one
updated least recently is forgotten first (``evicted`` counts them) and
starts again from a baseline if it returns. Long series identities are kept
as a 16-byte digest. Updates go through a ``StateBatch`` and take effect on
``commit``, so a remote-write request whose events could not be written
leaves the state as it was and its retry computes the same increments.

Batches that are written concurrently (remote-write requests in flight at
once) ``claim`` their series between computing and committing: a batch
whose series another uncommitted batch holds gets that batch back to wait
for, and is then computed again against what it committed, so two requests
carrying the same samples (a reshard, a resent request) never count an
increment twice. ``apply`` also never moves a series back to an older
point. Pure: no I/O, no clock, no locks (the caller waits).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, KeysView
from operator import sub

# Point = (start_ms, ts_ms, value); value is a float, or a tuple of floats (histograms).
Value = float | tuple[float, ...]
Point = tuple[int, int, Value]

_MAX_KEY_CHARS = 128


def series_key(text: str) -> str | bytes:
    """A compact identity for a series: the text itself if short, else its 16-byte digest."""
    if len(text) <= _MAX_KEY_CHARS:
        return text
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class SeriesState:
    """The last point of each cumulative series, least recently updated forgotten first."""

    def __init__(self, max_series: int = 200_000, max_interval_ms: int = 300_000) -> None:
        if max_series < 1:
            raise ValueError("max_series must be at least 1")
        self.max_series = max_series
        self.max_interval_ms = max_interval_ms
        self._points: OrderedDict[Hashable, Point] = OrderedDict()
        self._claims: dict[Hashable, StateBatch] = {}  # series → the batch computing it
        self._version = 0  # commits so far: a batch computed before one is stale
        self.evicted = 0
        self.out_of_order = 0

    def __len__(self) -> int:
        return len(self._points)

    def batch(self) -> StateBatch:
        """A set of updates that takes effect on ``commit``."""
        return StateBatch(self)

    def get(self, key: Hashable) -> Point | None:
        """The last committed point of a series."""
        return self._points.get(key)

    @property
    def committed(self) -> Callable[[Hashable], Point | None]:
        """``get`` without the call in between (the hot path of ``StateBatch``)."""
        return self._points.get

    def forget(self, key: Hashable) -> None:
        """Drop a series (it ended: a staleness marker)."""
        self._points.pop(key, None)

    @property
    def version(self) -> int:
        """How many batches were applied so far."""
        return self._version

    def claimed(self) -> int:
        """How many series uncommitted batches hold now."""
        return len(self._claims)

    def claim(self, batch: StateBatch) -> frozenset[StateBatch] | None:
        """Hold a batch's series for it; see ``StateBatch.claim``."""
        claims, keys = self._claims, batch.keys
        held = claims.keys() & keys
        if held:
            return frozenset({claims[key] for key in held})
        if batch.version != self._version:
            return frozenset()  # a batch committed since this one was computed: compute again
        claims.update(dict.fromkeys(keys, batch))
        return None

    def release(self, batch: StateBatch) -> None:
        """Drop the holds a batch has."""
        claims, keys = self._claims, batch.keys
        if len(claims) == len(keys):
            claims.clear()  # the series are held by one batch at most: all of them are its own
            return
        for key in keys:
            del claims[key]

    def apply(self, updates: dict[Hashable, Point | None], out_of_order: int = 0) -> None:
        """Take a batch's updates (a point, or None to forget), evicting beyond the cap."""
        self._version += 1
        self.out_of_order += out_of_order
        points = self._points
        for key, point in updates.items():
            if point is None:
                points.pop(key, None)
                continue
            current = points.get(key)
            if current is None or current[1] < point[1]:
                points[key] = point  # never back to an older point: its increment is counted
            points.move_to_end(key)
        overflow = len(points) - self.max_series
        for _ in range(max(0, overflow)):
            points.popitem(last=False)
        if overflow > 0:
            self.evicted += overflow


class StateBatch:
    """Increments computed against the state plus this batch's own earlier points."""

    def __init__(self, state: SeriesState) -> None:
        self._state = state
        self._committed = state.committed
        self._updates: dict[Hashable, Point | None] = {}
        self.version = state.version  # the state this batch is computed against
        self._claimed = False
        self.out_of_order = 0

    @property
    def keys(self) -> KeysView[Hashable]:
        """The series this batch read or updates."""
        return self._updates.keys()

    def _last(self, key: Hashable) -> Point | None:
        updates = self._updates
        if key in updates:
            return updates[key]
        return self._committed(key)

    def increment(
        self, key: Hashable, ts_ms: int, value: float, start_ms: int = 0, new_series: bool = False
    ) -> float | None:
        """The increase of a counter since its last point, or None (baseline, duplicate, gap).

        ``value`` must be finite and not negative (callers reject the rest).
        ``new_series``: the series started after the converter, so a first
        point counts in full.
        """
        updates = self._updates
        last = updates[key] if key in updates else self._committed(key)
        updates[key] = (start_ms, ts_ms, value)
        if last is None:
            return value if new_series else None
        last_start, last_ts, last_value = last
        if ts_ms <= last_ts:
            self._updates[key] = last
            self.out_of_order += 1
            return None
        if start_ms != last_start or not isinstance(last_value, float):
            return value  # a restart (new start time) or a changed kind of series
        if ts_ms - last_ts > self._state.max_interval_ms:
            return None
        if value < last_value:
            return value  # a counter that went down restarted
        return value - last_value

    def increments(
        self,
        key: Hashable,
        ts_ms: int,
        values: tuple[float, ...],
        start_ms: int = 0,
        new_series: bool = False,
    ) -> tuple[float, ...] | None:
        """Element-wise increments of a vector of counters (a histogram's count and buckets)."""
        last = self._last(key)
        self._updates[key] = (start_ms, ts_ms, values)
        if last is None:
            return values if new_series else None
        last_start, last_ts, last_values = last
        if ts_ms <= last_ts:
            self._updates[key] = last
            self.out_of_order += 1
            return None
        if (
            start_ms != last_start
            or not isinstance(last_values, tuple)
            or len(last_values) != len(values)
        ):
            return values
        if ts_ms - last_ts > self._state.max_interval_ms:
            return None
        deltas = tuple(map(sub, values, last_values))
        if min(deltas) < 0:
            return values  # any count that went down: the whole histogram restarted
        return deltas

    def forget(self, key: Hashable) -> None:
        """The series ended (a staleness marker): forget it on commit."""
        self._updates[key] = None

    def claim(self) -> frozenset[StateBatch] | None:
        """Hold this batch's series until ``commit`` or ``release``; call it right after computing.

        None: held, write the events and commit. Otherwise the batches that
        hold some of them (empty: one committed since this batch was computed):
        wait for those to end, then compute a fresh batch; this one is void.
        """
        blockers = self._state.claim(self)
        self._claimed = blockers is None
        return blockers

    def release(self) -> None:
        """Give the series back without applying anything (the events were not written)."""
        if self._claimed:
            self._state.release(self)
            self._claimed = False

    def commit(self) -> None:
        """Apply the batch's points to the state (once) and give its series back."""
        self.release()
        updates, self._updates = self._updates, {}
        self._state.apply(updates, self.out_of_order)
        self.out_of_order = 0

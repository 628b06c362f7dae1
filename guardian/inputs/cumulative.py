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
Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable
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

    def forget(self, key: Hashable) -> None:
        """Drop a series (it ended: a staleness marker)."""
        self._points.pop(key, None)

    def apply(self, updates: dict[Hashable, Point | None], out_of_order: int = 0) -> None:
        """Take a batch's updates (a point, or None to forget), evicting beyond the cap."""
        self.out_of_order += out_of_order
        points = self._points
        for key, point in updates.items():
            if point is None:
                points.pop(key, None)
                continue
            points[key] = point
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
        self._updates: dict[Hashable, Point | None] = {}
        self.out_of_order = 0

    def _last(self, key: Hashable) -> Point | None:
        updates = self._updates
        if key in updates:
            return updates[key]
        return self._state.get(key)

    def increment(
        self, key: Hashable, ts_ms: int, value: float, start_ms: int = 0, new_series: bool = False
    ) -> float | None:
        """The increase of a counter since its last point, or None (baseline, duplicate, gap).

        ``value`` must be finite and not negative (callers reject the rest).
        ``new_series``: the series started after the converter, so a first
        point counts in full.
        """
        last = self._last(key)
        self._updates[key] = (start_ms, ts_ms, value)
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

    def commit(self) -> None:
        """Apply the batch's points to the state (once)."""
        updates, self._updates = self._updates, {}
        self._state.apply(updates, self.out_of_order)
        self.out_of_order = 0

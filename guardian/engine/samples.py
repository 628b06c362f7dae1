"""The lateness buffer of one series: its samples within the allowed lateness, in flat arrays.

A series remembers the samples of the last ``allowed_lateness`` of event time
for two reasons: to refuse an exact duplicate (same time, same values) and
to refill its deploy windows when a deploy is learnt of after its first
samples. ``RecentSamples`` keeps them in time order as two flat arrays, the
times and the values as rows in the key order of the first sample (the
``schema``, shared by every series with the same keys): 8 bytes a number and
no object per sample. A sample whose keys differ from the schema's keeps its
own dict beside its (zero) row, in ``odd``, which exists only while such a
sample is held.

Limits: values come back as floats (the decoder gives floats; an int given
directly compares and sums alike). Not saved in snapshots: after a restore
duplicate detection restarts.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from sys import intern

_ZERO_ROW = array("d", [0.0])
# Key tuples of the buffers: a fleet sends a handful, each series would copy one.
_SCHEMAS: dict[tuple[str, ...], tuple[str, ...]] = {}


def _schema(values: dict[str, float]) -> tuple[str, ...]:
    """The keys of ``values`` as a tuple shared by every buffer with the same keys."""
    keys = tuple(values)
    found = _SCHEMAS.get(keys)
    if found is None:
        if len(_SCHEMAS) >= 1024:  # bounded: names that vary per event must not pile up
            _SCHEMAS.clear()
        found = _SCHEMAS[keys] = tuple(intern(key) for key in keys)
    return found


class RecentSamples:
    """Samples ``(ts, values)`` in time order; exact duplicates refused; old ones dropped."""

    __slots__ = ("odd", "rows", "schema", "stamps")

    def __init__(self) -> None:
        self.stamps = array("q")
        self.rows = array("d")
        self.schema: tuple[str, ...] = ()
        self.odd: list[dict[str, float] | None] | None = None

    def since(self, start_ms: int) -> list[tuple[int, dict[str, float]]]:
        """The samples at or after ``start_ms``, in time order."""
        stamps = self.stamps
        first = bisect_left(stamps, start_ms)
        return [(stamps[k], self._sample(k)) for k in range(first, len(stamps))]

    def add(self, ts: int, values: dict[str, float], horizon: int, *, newest: bool) -> bool:
        """Keep a sample, drop those older than ``horizon``; False if it is an exact duplicate.

        ``newest``: ``ts`` is later than any sample the series has seen (no duplicate check).
        """
        stamps = self.stamps
        if not stamps:
            self.schema = _schema(values)
            self.odd = None
        fits = tuple(values) == self.schema
        if newest:
            end = len(stamps)
        else:
            end = bisect_right(stamps, ts)
            k = end
            while k and stamps[k - 1] == ts:
                if self._sample(k - 1) == values:
                    return False
                k -= 1
        self._insert(end, ts, values, fits)
        if stamps[0] < horizon:
            gone = bisect_left(stamps, horizon)
            del stamps[:gone]
            del self.rows[: gone * len(self.schema)]
            odd = self.odd
            if odd is not None:
                del odd[:gone]
                if all(sample is None for sample in odd):
                    self.odd = None
        return True

    def _sample(self, k: int) -> dict[str, float]:
        """The values of the ``k``-th sample."""
        odd = self.odd
        if odd is not None:
            own = odd[k]
            if own is not None:
                return own
        schema = self.schema
        width = len(schema)
        return dict(zip(schema, self.rows[k * width : (k + 1) * width], strict=True))

    def _insert(self, k: int, ts: int, values: dict[str, float], fits: bool) -> None:
        """Put a sample at position ``k``: a row, or a zero row with its dict in ``odd``."""
        stamps, rows, width = self.stamps, self.rows, len(self.schema)
        odd = self.odd
        if not fits and odd is None:
            odd = self.odd = [None] * len(stamps)
        if k == len(stamps):
            stamps.append(ts)
            if fits:
                rows.extend(values.values())
            else:
                rows.extend(_ZERO_ROW * width)
            if odd is not None:
                odd.append(None if fits else values)
            return
        stamps.insert(k, ts)
        rows[k * width : k * width] = array("d", values.values()) if fits else _ZERO_ROW * width
        if odd is not None:
            odd.insert(k, None if fits else values)

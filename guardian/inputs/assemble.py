"""Per-interval contributions into v1 metric events, the one form rules read.

Both converters find, for each sample, its v1 identity (service,
environment, region, cohort, version) and what it adds at its timestamp:
request and error increments, histogram bucket increments, or a value.
``EventAssembler`` sums what shares an identity and a timestamp (a scrape of
one target, an export of one SDK) into one ``MetricEvent``: ``requests`` and
``errors`` add up, bucket increments add up per upper bound (as
``sum by (le)`` does) and become quantiles, gauges are averaged and counter
increments summed. ``Conversion`` is what a converter returns: the events,
the samples read and, per reason, the samples left out.

``histogram_quantile`` is Prometheus' ``bucketQuantile`` (promql/quantile.go):
linear interpolation inside the bucket that holds the rank, 0 as the lower
bound of the first bucket, the second-highest bound when the rank falls in
the +Inf bucket, and non-monotonic counts smoothed to their running maximum.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from operator import add
from typing import Literal

from guardian.wire.events import (
    MAX_EVENT_TIME_MS,
    MIN_EVENT_TIME_MS,
    EventTime,
    MetricEvent,
)

# Why a sample was left out. "Rejected" ones are the producer's to fix and put the
# record they came in on the dead-letter topic (once per record); the others are
# expected (metrics nobody maps, drop rules, duplicates) and only counted.
SkipReason = Literal[
    "unmapped_metric",
    "dropped",
    "out_of_order",
    "ended",
    "no_service",
    "no_environment",
    "unknown_cohort",
    "label_too_long",
    "bad_timestamp",
    "not_finite",
    "negative_counter",
    "unsupported_type",
    "too_many_values",
]
REJECTED: frozenset[str] = frozenset(
    {
        "no_service",
        "no_environment",
        "unknown_cohort",
        "label_too_long",
        "bad_timestamp",
        "not_finite",
        "negative_counter",
        "unsupported_type",
        "too_many_values",
    }
)
COHORTS = frozenset({"canary", "stable", "baseline"})
MAX_LABEL_CHARS = 256
MAX_VALUES = 64

# (service, environment, region, cohort, version)
Identity = tuple[str, str, str | None, str | None, str | None]
Buckets = dict[float, float]  # upper bound → cumulative count


def histogram_quantile(q: float, buckets: Buckets) -> float:
    """The q-quantile of cumulative bucket counts keyed by upper bound; NaN when undefined."""
    if not buckets:
        return math.nan
    bounds = sorted(buckets)
    return quantiles((q,), bounds, [buckets[b] for b in bounds])[0]


def quantiles(qs: Sequence[float], bounds: Sequence[float], counts: Sequence[float]) -> list[float]:
    """``histogram_quantile`` of each q over cumulative ``counts`` at increasing ``bounds``."""
    if len(bounds) < 2 or not math.isinf(bounds[-1]):
        return [math.nan] * len(qs)
    envelope = list(accumulate(counts, max))  # counts never decrease with the bound
    total = envelope[-1]
    if not total > 0:
        return [math.nan] * len(qs)
    last = len(bounds) - 1
    out = []
    for q in qs:
        if math.isnan(q):
            out.append(math.nan)
            continue
        rank = q * total
        index = bisect_left(envelope, rank)
        if index >= last:
            out.append(bounds[-2])
        elif index == 0 and bounds[0] <= 0:
            out.append(bounds[0])
        else:
            start = bounds[index - 1] if index > 0 else 0.0
            below = envelope[index - 1] if index > 0 else 0.0
            in_bucket = envelope[index] - below
            if in_bucket <= 0:  # q = 0 on an empty first bucket: Go's 0/0
                out.append(math.nan)
                continue
            out.append(start + (bounds[index] - start) * ((rank - below) / in_bucket))
    return out


@dataclass
class Conversion:
    """What one OTLP record or remote-write request became."""

    events: list[MetricEvent] = field(default_factory=list)
    samples: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def rejected(self) -> dict[str, int]:
        """Samples left out for reasons the producer should fix, by reason."""
        return {reason: n for reason, n in self.skipped.items() if reason in REJECTED}

    def rejection_reason(self) -> str | None:
        """One sentence for the dead letter, or None when nothing was rejected."""
        rejected = self.rejected
        if not rejected:
            return None
        parts = ", ".join(f"{reason}={n}" for reason, n in sorted(rejected.items()))
        return f"{sum(rejected.values())} of {self.samples} samples not mapped: {parts}"


class _Family:
    """One latency histogram's bucket increments at one slot: a vector while the bounds agree."""

    __slots__ = ("bounds", "by_bound", "counts", "scale_ms")

    def __init__(self, scale_ms: float) -> None:
        self.scale_ms = scale_ms
        self.bounds: tuple[float, ...] | None = None  # increasing, +Inf last
        self.counts: list[float] = []
        self.by_bound: Buckets | None = None  # any other shape, merged by bound

    def add_vector(self, bounds: tuple[float, ...], counts: Sequence[float]) -> None:
        if self.by_bound is None and self.bounds is None:
            self.bounds, self.counts = bounds, list(counts)
        elif self.by_bound is None and self.bounds == bounds:
            self.counts = list(map(add, self.counts, counts))
        else:
            for bound, count in zip(bounds, counts, strict=True):
                self.add(bound, count)

    def add(self, bound: float, count: float) -> None:
        by_bound = self.by_bound
        if by_bound is None:
            by_bound = self.by_bound = dict(zip(self.bounds or (), self.counts, strict=True))
            self.bounds = None
        by_bound[bound] = by_bound.get(bound, 0.0) + count

    def quantiles(self, qs: Sequence[float]) -> list[float]:
        if self.by_bound is not None:
            bounds = sorted(self.by_bound)
            return quantiles(qs, bounds, [self.by_bound[b] for b in bounds])
        return quantiles(qs, self.bounds or (), self.counts)


class _Slot:
    """Everything one identity contributes at one timestamp."""

    __slots__ = ("errors", "families", "has_requests", "requests", "values")

    def __init__(self) -> None:
        self.requests = 0.0
        self.errors = 0.0
        self.has_requests = False
        self.families: dict[str, _Family] = {}
        # values key → [total, count, is_counter]
        self.values: dict[str, list[float]] = {}


class EventAssembler:
    """Sums contributions per (identity, timestamp) and builds one event for each."""

    def __init__(self, quantiles: Sequence[tuple[str, float]]) -> None:
        self._keys = tuple(key for key, _ in quantiles)
        self._qs = tuple(q for _, q in quantiles)
        self._slots: dict[tuple[Identity, int], _Slot] = {}

    def _slot(self, identity: Identity, ts_ms: int) -> _Slot:
        key = (identity, ts_ms)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
        return slot

    def reserve(self, identity: Identity, ts_ms: int) -> None:
        """Place an event now that a caller summing on its own will fill in later.

        Events of one timestamp come out in the order of their first
        contribution; a caller that sums a request's samples itself (remote
        write) reserves at its first sample and adds the totals at the end.
        """
        self._slot(identity, ts_ms)

    def request_totals(
        self, identity: Identity, ts_ms: int, requests: float, errors: float
    ) -> None:
        """``requests`` requests, ``errors`` of them errors, in the interval ending at ``ts_ms``."""
        slot = self._slot(identity, ts_ms)
        slot.has_requests = True
        slot.requests += requests
        slot.errors += errors

    def bucket_totals(
        self, identity: Identity, ts_ms: int, family: str, scale_ms: float, by_bound: Buckets
    ) -> None:
        """Bucket increments by upper bound of one latency histogram, summed by the caller."""
        families = self._slot(identity, ts_ms).families
        found = families.get(family)
        if found is None:
            found = families[family] = _Family(scale_ms)
        for bound, count in by_bound.items():
            found.add(bound, count)

    def requests(self, identity: Identity, ts_ms: int, count: float, error: bool) -> None:
        """``count`` requests in the interval ending at ``ts_ms``; all errors if ``error``."""
        slot = self._slot(identity, ts_ms)
        slot.has_requests = True
        slot.requests += count
        if error:
            slot.errors += count

    def buckets(
        self,
        identity: Identity,
        ts_ms: int,
        family: str,
        scale_ms: float,
        bounds: tuple[float, ...],
        counts: Sequence[float],
    ) -> None:
        """Cumulative bucket increments at increasing ``bounds`` (+Inf last) of one histogram."""
        families = self._slot(identity, ts_ms).families
        found = families.get(family)
        if found is None:
            found = families[family] = _Family(scale_ms)
        found.add_vector(bounds, counts)

    def bucket(
        self, identity: Identity, ts_ms: int, family: str, scale_ms: float, le: float, count: float
    ) -> None:
        """One bucket's increment (a Prometheus ``_bucket`` series) of a latency histogram."""
        families = self._slot(identity, ts_ms).families
        found = families.get(family)
        if found is None:
            found = families[family] = _Family(scale_ms)
        found.add(le, count)

    def value(self, identity: Identity, ts_ms: int, key: str, value: float, counter: bool) -> None:
        """A gauge reading (averaged) or a counter increment (summed) for ``values[key]``."""
        values = self._slot(identity, ts_ms).values
        entry = values.get(key)
        if entry is None:
            values[key] = [value, 1.0, 1.0 if counter else 0.0]
        else:
            entry[0] += value
            entry[1] += 1.0

    def events(self, skipped: Counter[str]) -> list[MetricEvent]:
        """The events, in time order; an event over the values limit is counted and left out."""
        out: list[MetricEvent] = []
        for (identity, ts_ms), slot in sorted(self._slots.items(), key=_by_time):
            values: dict[str, float] = {}
            if slot.has_requests:
                values["requests"] = slot.requests
                values["errors"] = slot.errors
            for key, (total, count, counter) in slot.values.items():
                values[key] = total if counter else total / count
            if slot.families:
                self._latency(slot.families, values)
            if not values:
                continue
            if len(values) > MAX_VALUES:
                skipped["too_many_values"] += 1
                continue
            service, environment, region, cohort, version = identity
            try:
                event = MetricEvent(
                    service=service,
                    environment=environment,
                    timestamp=EventTime(ts_ms),
                    values=values,
                    region=region,
                    cohort=cohort,  # type: ignore[arg-type]  # checked against COHORTS
                    version=version,
                )
            except ValueError:  # a gauge that summed to infinity
                skipped["not_finite"] += 1
                continue
            out.append(event)
        self._slots.clear()
        return out

    def _latency(self, families: dict[str, _Family], values: dict[str, float]) -> None:
        """Quantiles of each family in ms; several families with data are averaged."""
        found: list[list[float]] = [
            [q * family.scale_ms for q in family.quantiles(self._qs)]
            for family in families.values()
        ]
        for index, key in enumerate(self._keys):
            finite = [row[index] for row in found if math.isfinite(row[index])]
            if finite:
                values[key] = sum(finite) / len(finite)


def _by_time(item: tuple[tuple[Identity, int], _Slot]) -> int:
    return item[0][1]


def check_identity(
    service: str | None,
    environment: str | None,
    region: str | None,
    cohort: str | None,
    version: str | None,
) -> Identity | SkipReason:
    """The identity if v1 can carry it, else why not."""
    if not service:
        return "no_service"
    if not environment:
        return "no_environment"
    if cohort is not None and cohort not in COHORTS:
        return "unknown_cohort"
    for label in (service, environment, region, version):
        if label is not None and len(label) > MAX_LABEL_CHARS:
            return "label_too_long"
    return (service, environment, region or None, cohort, version or None)


def valid_time(ts_ms: int) -> bool:
    """Whether v1 accepts this event time."""
    return MIN_EVENT_TIME_MS <= ts_ms <= MAX_EVENT_TIME_MS

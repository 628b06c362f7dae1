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
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    if not buckets or math.isnan(q):
        return math.nan
    bounds = sorted(buckets)
    if not math.isinf(bounds[-1]) or len(bounds) < 2:
        return math.nan
    counts = [buckets[b] for b in bounds]
    running = counts[0]
    for i in range(1, len(counts)):  # the envelope: counts never decrease with the bound
        running = counts[i] = max(running, counts[i])
    total = counts[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    index = next(i for i, count in enumerate(counts) if count >= rank)
    if index == len(bounds) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    start = bounds[index - 1] if index > 0 else 0.0
    below = counts[index - 1] if index > 0 else 0.0
    in_bucket = counts[index] - below
    return start + (bounds[index] - start) * ((rank - below) / in_bucket)


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


class _Slot:
    """Everything one identity contributes at one timestamp."""

    __slots__ = ("errors", "families", "has_requests", "requests", "values")

    def __init__(self) -> None:
        self.requests = 0.0
        self.errors = 0.0
        self.has_requests = False
        # latency family → (scale to ms, buckets)
        self.families: dict[str, tuple[float, Buckets]] = {}
        # values key → [total, count, is_counter]
        self.values: dict[str, list[float]] = {}


class EventAssembler:
    """Sums contributions per (identity, timestamp) and builds one event for each."""

    def __init__(self, quantiles: Sequence[tuple[str, float]]) -> None:
        self._quantiles = tuple(quantiles)
        self._slots: dict[tuple[Identity, int], _Slot] = {}

    def _slot(self, identity: Identity, ts_ms: int) -> _Slot:
        key = (identity, ts_ms)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
        return slot

    def requests(self, identity: Identity, ts_ms: int, count: float, error: bool) -> None:
        """``count`` requests in the interval ending at ``ts_ms``; all errors if ``error``."""
        slot = self._slot(identity, ts_ms)
        slot.has_requests = True
        slot.requests += count
        if error:
            slot.errors += count

    def buckets(
        self, identity: Identity, ts_ms: int, family: str, scale_ms: float, buckets: Buckets
    ) -> None:
        """Cumulative bucket increments (upper bound → count) of one latency histogram."""
        families = self._slot(identity, ts_ms).families
        found = families.get(family)
        if found is None:
            families[family] = (scale_ms, dict(buckets))
            return
        into = found[1]
        for bound, count in buckets.items():
            into[bound] = into.get(bound, 0.0) + count

    def bucket(
        self, identity: Identity, ts_ms: int, family: str, scale_ms: float, le: float, count: float
    ) -> None:
        """One bucket's increment (a Prometheus ``_bucket`` series) of a latency histogram."""
        families = self._slot(identity, ts_ms).families
        found = families.get(family)
        if found is None:
            families[family] = (scale_ms, {le: count})
            return
        into = found[1]
        into[le] = into.get(le, 0.0) + count

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
            for key, quantile in self._quantiles:
                found = [
                    histogram_quantile(quantile, buckets) * scale
                    for scale, buckets in slot.families.values()
                ]
                found = [v for v in found if math.isfinite(v)]
                if found:
                    values[key] = sum(found) / len(found)
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

"""Pairing the two cohorts' events into the spans the tests compare.

The tests compare canary and stable over the *same* span of event time.
Metric events of the two cohorts arrive separately; ``CountPairing`` sums
each cohort's counts until both have reported and a later instant begins,
then hands both sums over at once, so every update covers (about) one shared
span. ``LatestSample`` keeps stable's newest gauge samples for the canary's
next one to be paired with, and refuses a sample that is too old. Neither
depends on the order of two events of the same instant.
``SpanSums`` sums one series' events over one fixed span of event time (30 s
buckets), for a test against the same region before the deploy: each span
is paired, once it is over, with the bucket of pre-deploy traffic it is
compared with.

Limits: no clock and no buffer; a cohort that stops reporting simply makes
no more updates (the tests stay where they are: inconclusive is reported).
"""

from __future__ import annotations

from typing import Literal

from guardian.stats.evidence import Snapshot

Cohort = Literal["canary", "stable"]


class CountPairing(Snapshot):
    """Counts of both cohorts since the last update; four floats, two flags, one time."""

    __slots__ = (
        "canary_errors",
        "canary_requests",
        "has_canary",
        "has_stable",
        "newest_ms",
        "stable_errors",
        "stable_requests",
    )

    def __init__(self) -> None:
        self.canary_requests = self.canary_errors = 0.0
        self.stable_requests = self.stable_errors = 0.0
        self.has_canary = self.has_stable = False
        self.newest_ms = -1  # the latest event time summed since the last update

    def add(
        self, cohort: Cohort, requests: float, errors: float, at_ms: int
    ) -> tuple[float, float, float, float] | None:
        """Add one event's counts; hand over the sums so far once a later instant begins.

        The sums are handed over (and reset) at the first event of an instant
        later than every event summed, if both cohorts reported by then. Events
        of one instant therefore always land in the same update, whichever
        cohort's came first: a fetch, a batch boundary or a late deploy's
        catch-up may order them either way, and the decisions must not depend
        on it. The tuple is (canary requests, canary errors, stable requests,
        stable errors), ready for ``RateTest.update``.
        """
        pair = None
        if at_ms > self.newest_ms and self.has_canary and self.has_stable:
            pair = (
                self.canary_requests,
                self.canary_errors,
                self.stable_requests,
                self.stable_errors,
            )
            self.canary_requests = self.canary_errors = 0.0
            self.stable_requests = self.stable_errors = 0.0
            self.has_canary = self.has_stable = False
        if cohort == "canary":
            self.canary_requests += requests
            self.canary_errors += errors
            self.has_canary = True
        else:
            self.stable_requests += requests
            self.stable_errors += errors
            self.has_stable = True
        self.newest_ms = max(self.newest_ms, at_ms)
        return pair


class LatestSample(Snapshot):
    """Stable's two newest gauge samples of different instants (value, requests, event time)."""

    __slots__ = ("at_ms", "prior_at_ms", "prior_requests", "prior_value", "requests", "value")

    def __init__(self) -> None:
        self.value: float | None = None
        self.requests: float | None = None
        self.at_ms = 0
        self.prior_value: float | None = None
        self.prior_requests: float | None = None
        self.prior_at_ms = 0

    def set(self, value: float, at_ms: int, requests: float | None = None) -> None:
        """Remember a newer sample (an older one than held is ignored)."""
        if self.value is None or at_ms >= self.at_ms:
            if self.value is not None and at_ms > self.at_ms:
                self.prior_value, self.prior_requests = self.value, self.requests
                self.prior_at_ms = self.at_ms
            self.value, self.requests, self.at_ms = value, requests, at_ms

    def fresh(self, at_ms: int, max_age_ms: int) -> tuple[float, float | None] | None:
        """Stable's sample to pair a canary sample of ``at_ms`` with: (value, requests) or None.

        Never one of the same instant: whether it arrived before or after the
        canary's is an accident of fetching, so the sample before it is used,
        whichever order they came in. None if that one is older than ``max_age_ms``.
        """
        value: float | None
        if self.value is not None and self.at_ms != at_ms:
            value, requests, sampled_ms = self.value, self.requests, self.at_ms
        else:
            value, requests, sampled_ms = self.prior_value, self.prior_requests, self.prior_at_ms
        if value is None or abs(at_ms - sampled_ms) > max_age_ms:
            return None
        return value, requests


class SpanSums(Snapshot):
    """Sums of one fixed span of event time still being filled: three floats, two ints."""

    __slots__ = ("count", "den", "index", "num", "requests")

    def __init__(self) -> None:
        self.index = -1  # the span being filled (event time // span length), -1 if none
        self.num = self.den = self.requests = 0.0
        self.count = 0

    def start(self, index: int) -> None:
        """Empty sums for span ``index``."""
        self.index = index
        self.num = self.den = self.requests = 0.0
        self.count = 0

    def add(self, num: float, den: float, requests: float | None) -> None:
        """Add one event's numerator, denominator (0 for a gauge) and requests (-1: unknown)."""
        self.num += num
        self.den += den
        if requests is None or self.requests < 0.0:
            self.requests = -1.0  # one event without requests: the span's are unknown
        else:
            self.requests += requests
        self.count += 1

"""Statistical comparison with stable or with the region before the deploy, per rule and region.

A ``compare`` rule is judged by an anytime-valid test (``guardian.stats``)
instead of a window and a threshold. ``Comparison`` holds one deploy's test
for one rule in one region: the canary series feeds ``feed_canary``, the
stable series of the same region ``feed_stable``, on every metric event
while a deploy is live. Rates pair both cohorts' counts over shared spans
(``CountPairing``); gauges pair each canary sample with stable's latest
(``LatestSample``). The verdict ``worse`` makes the rule hold at once (no
``for``, no volume floor: the test's confidence is the safeguard).

``baseline: before`` (progressive deploys: the whole region runs the new
version) compares each region with its own traffic before the deploy,
kept in the service's pre-deploy buckets (``BucketSet``, 30 s each, the
store the relative threshold rules read). The series' events after the
deploy's start are summed per 30 s span (``SpanSums``); once a span is over
(the series' first event of a later span) it is paired with the bucket
``before`` earlier, if that bucket lies wholly before the deploy's start,
and the pair feeds the same test as a canary/stable pair would: rates as
(span's counts, bucket's counts), gauges as (span's mean sample, bucket's
mean sample). Each pre-deploy bucket is paired with exactly one span, in an
order fixed in advance (by time), and nothing the test does depends on a
bucket before its turn, so the tests' guarantee carries over to pairs: see
``rules/README.md`` for what holds. The test covers the first ``before``
after the deploy's start (afterwards no bucket is left to compare with; it
stays as it was, reported) and, for ``regions: reached``, only spans after
the region was reached.

Saving: ``save`` gives a ``ComparisonSnapshot`` (the test's state, the
pairing in progress, the deploy it belongs to, and the rule's hypothesis as
text) that engine snapshots carry, and ``load`` takes one back, so a replica
that takes a service over decides exactly when the one before it would have.
A test is kept only for the same hypothesis: a hot reload (``adopt``) or a
restore under rules whose ``compare`` parameters, metric or matchers differ
starts that rule's test afresh, since its evidence was gathered against
another hypothesis; a rule whose hypothesis is unchanged keeps its evidence
(editing its description or severity restarts nothing).

Limits: a test covers one deploy (a new deploy id restarts it). State is a
few numbers per test, never a buffer of samples. A ``before`` span closes on
its series' next event, so a decision comes up to one span (30 s) after the
evidence; events later than the span being filled are no evidence.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from guardian.engine.buckets import BUCKET_MS, BucketSet
from guardian.engine.rules.compiled import CompiledRule, MeasureKey, StatTest
from guardian.stats import (
    CountPairing,
    LatestSample,
    RateState,
    RateTest,
    ShiftState,
    ShiftTest,
    SpanSums,
)
from guardian.stats.evidence import Verdict

# One series' way into a test: (event time, values, deploy id).
Feed = Callable[[int, dict[str, float], str], None]
# Requests behind a gauge's samples in the pre-deploy buckets (for ``min_requests``): the
# denominator of the error rate, a measure the error rules keep anyway (no column of its own).
REQUESTS: MeasureKey = ("errors", "requests", 0.0)
# What a test holds before its first event. Never mutated: the first event of a deploy
# restarts the test with its own objects (its deploy id differs from None), so a service
# with no live deploy holds no state per test beyond the ``Comparison`` itself.
_EMPTY_PAIRING, _EMPTY_SPAN, _EMPTY_LATEST = CountPairing(), SpanSums(), LatestSample()
_EMPTY_STATES: dict[type, RateState | ShiftState] = {}


def _empty_state(test: StatTest) -> RateState | ShiftState:
    """A shared fresh state of ``test``'s kind (the same shape for every test of a kind)."""
    found = _EMPTY_STATES.get(type(test))
    if found is None:
        found = _EMPTY_STATES[type(test)] = test.start()
    return found


class DeployView(Protocol):
    """What a ``before`` test reads of the live deploy."""

    @property
    def started_at_ms(self) -> int:
        """When the deploy started (event time)."""
        ...

    @property
    def reached(self) -> list[str]:
        """The regions it has reached so far."""
        ...


class ServiceView(Protocol):
    """What a ``before`` test reads of its service: the live deploy, the pre-deploy buckets."""

    @property
    def deploy(self) -> DeployView | None:
        """The service's deploy, if any."""
        ...

    def region_buckets(self, region: str) -> BucketSet | None:
        """The region's pre-deploy buckets (None if no rule needs any)."""
        ...


class ComparisonSnapshot(msgspec.Struct, kw_only=True):
    """One running test as saved in an engine snapshot: plain numbers, by field name."""

    rule: str
    region: str
    hypothesis: str  # ``hypothesis_of(rule)`` when saved: restored only under the same one
    deploy_id: str | None
    state: dict[str, Any]  # the test's state (``RateState`` / ``ShiftState``)
    pairing: dict[str, Any]  # counts of the span being paired (``CountPairing``, ``SpanSums``)
    latest: dict[str, Any]  # stable's newest gauge sample (``LatestSample``)


def _same_shape(saved: dict[str, Any], fresh: dict[str, Any]) -> bool:
    """Whether every list of a saved state is as long as a fresh state's (the test's grid)."""
    return all(
        len(value) == len(fresh[name]) for name, value in saved.items() if isinstance(value, list)
    )


def hypothesis_of(rule: CompiledRule) -> str:
    """What a test's evidence is evidence for: the measure, the matchers and ``compare``.

    Two rules with the same text here test the same hypothesis, so a test of
    one may carry on under the other (a hot reload, a restore).
    """
    spec = rule.spec
    assert spec.compare is not None  # noqa: S101 - only compare rules have a test
    return sys.intern(
        json.dumps(
            {
                "measure": rule.measure,
                "aggregate": rule.aggregate,
                "match": spec.match.model_dump(mode="json"),
                "regions": spec.regions,
                "compare": spec.compare.model_dump(mode="json"),
            },
            sort_keys=True,
        )
    )


class Comparison:
    """One deploy's test of one rule in one region; fed by both cohorts' series."""

    __slots__ = (
        "_den",
        "_lag",
        "_num",
        "_region",
        "_service",
        "before",
        "deploy_id",
        "feed_canary",
        "feed_stable",
        "hypothesis",
        "latest",
        "max_age_ms",
        "pairing",
        "rule",
        "span",
        "state",
        "test",
    )

    def __init__(
        self,
        rule: CompiledRule,
        test: StatTest,
        service: ServiceView | None = None,
        region: str = "",
    ) -> None:
        """A test of ``rule`` that has seen nothing yet (``before`` tests read ``service``)."""
        self.rule = rule
        self.test = test
        self.hypothesis = hypothesis_of(rule)
        compare = rule.spec.compare
        assert compare is not None  # noqa: S101 - only compare rules have a test
        self.max_age_ms = compare.max_age
        self.before = compare.baseline == "before"
        self._lag = compare.before // BUCKET_MS  # spans between a span and its bucket
        self._service = service
        self._region = region
        self.deploy_id: str | None = None
        self.state: RateState | ShiftState = _empty_state(test)
        self.pairing = _EMPTY_PAIRING  # stable rates: the counts being paired
        self.span = _EMPTY_SPAN  # ``before`` tests: the span being summed
        self.latest = _EMPTY_LATEST  # stable gauges: stable's newest sample
        measure = rule.measure
        assert measure is not None  # noqa: S101 - compare rules are metric rules
        self._num, self._den = measure[0], measure[1] or "requests"
        # What one event of each cohort does (``Feed``), chosen once for the hot path.
        self.feed_canary: Feed
        self.feed_stable: Feed
        if self.before:
            self.feed_canary, self.feed_stable = self._before, self._ignore
        elif isinstance(test, RateTest):
            self.feed_canary, self.feed_stable = self._rate_canary, self._rate_stable
        else:
            self.feed_canary, self.feed_stable = self._gauge_canary, self._gauge_stable

    def restart(self, deploy_id: str | None) -> None:
        """Fresh evidence for a new deploy (new objects only for what this kind of test uses)."""
        self.deploy_id = deploy_id
        self.state = self.test.start()
        gauge = isinstance(self.test, ShiftTest)
        self.pairing = _EMPTY_PAIRING if self.before or gauge else CountPairing()
        self.span = SpanSums() if self.before else _EMPTY_SPAN
        self.latest = LatestSample() if gauge and not self.before else _EMPTY_LATEST

    @property
    def against(self) -> str:
        """What the test compares with, in words: ``stable``, ``the region 30m before``."""
        if not self.before:
            return "stable"
        minutes = self._lag * BUCKET_MS / 60_000
        return f"the region {minutes:g}m before"

    @property
    def verdict(self) -> Verdict:
        """``worse``, ``not_worse`` or ``inconclusive`` so far."""
        return self.state.verdict

    def adopt(self, rule: CompiledRule) -> bool:
        """After a hot reload: carry on under ``rule`` if it tests the same hypothesis."""
        if rule.stat_test is None or hypothesis_of(rule) != self.hypothesis:
            return False
        self.rule, self.test = rule, rule.stat_test
        return True

    def save(self, region: str) -> ComparisonSnapshot:
        """The running test as plain numbers (copies: the snapshot does not move with it)."""
        return ComparisonSnapshot(
            rule=self.rule.name,
            region=region,
            hypothesis=self.hypothesis,
            deploy_id=self.deploy_id,
            state=self.state.to_dict(),
            pairing=(self.span if self.before else self.pairing).to_dict(),
            latest=self.latest.to_dict(),
        )

    def load(self, saved: ComparisonSnapshot) -> bool:
        """Take back a saved test of the same hypothesis; False (and no change) if not."""
        if saved.hypothesis != self.hypothesis:
            return False
        fresh = self.test.start()
        try:
            state = type(fresh).from_dict(saved.state)
            pairing = (SpanSums if self.before else CountPairing).from_dict(saved.pairing)
            latest = LatestSample.from_dict(saved.latest)
        except ValueError:
            return False  # saved by a guardian whose test keeps other numbers: start afresh
        if not _same_shape(state.to_dict(), fresh.to_dict()):
            return False
        self.deploy_id = saved.deploy_id
        if isinstance(pairing, SpanSums):
            self.span = pairing
        else:
            self.pairing = pairing
        self.state, self.latest = state, latest
        return True

    def _rate_canary(self, ts: int, values: dict[str, float], deploy_id: str) -> None:
        self._rate(True, ts, values, deploy_id)

    def _rate_stable(self, ts: int, values: dict[str, float], deploy_id: str) -> None:
        self._rate(False, ts, values, deploy_id)

    def _before_start(self, ts: int) -> bool:
        """Whether ``ts`` lies before the live deploy's start: no evidence about it.

        A deploy event may be judged before older metrics of the same service
        (its topic fetched ahead of the metric topic): replay would have fed
        those before the deploy existed, so they must not count here either.
        """
        deploy = self._service.deploy if self._service is not None else None
        return deploy is None or ts < deploy.started_at_ms

    def _rate(self, canary: bool, ts: int, values: dict[str, float], deploy_id: str) -> None:
        if deploy_id != self.deploy_id:
            self.restart(deploy_id)
        if self._before_start(ts):
            return
        requests = values.get(self._den)
        if requests is None:
            return
        errors = values.get(self._num, 0.0)
        if not 0.0 <= errors <= requests < math.inf:
            return  # a glitch (more errors than requests, NaN): no evidence, no crash
        pair = self.pairing.add("canary" if canary else "stable", requests, errors, ts)
        if pair is not None:
            self.test.update(self.state, *pair, ts)  # type: ignore[arg-type]

    def _gauge_canary(self, ts: int, values: dict[str, float], deploy_id: str) -> None:
        if deploy_id != self.deploy_id:
            self.restart(deploy_id)
        if self._before_start(ts):
            return
        value = values.get(self._num)
        if value is None or not 0.0 <= value < math.inf:
            return
        latest = self.latest
        ref = latest.fresh(ts, self.max_age_ms)
        if ref is not None:
            requests = values.get("requests")
            self.test.update(self.state, value, ref[0], ts, requests, ref[1])  # type: ignore[arg-type]

    def _gauge_stable(self, ts: int, values: dict[str, float], deploy_id: str) -> None:
        if deploy_id != self.deploy_id:
            self.restart(deploy_id)
        if self._before_start(ts):
            return
        value = values.get(self._num)
        if value is not None and 0.0 <= value < math.inf:
            self.latest.set(value, ts, values.get("requests"))

    def _ignore(self, ts: int, values: dict[str, float], deploy_id: str) -> None:
        """A ``before`` test has no second cohort: stable's events are no evidence."""

    def _before(self, ts: int, values: dict[str, float], deploy_id: str) -> None:
        """One event of the region after the deploy: into its span, pairing the span before."""
        if deploy_id != self.deploy_id:
            self.restart(deploy_id)
        deploy = self._service.deploy if self._service is not None else None
        if deploy is None or ts < deploy.started_at_ms:
            return
        if self.rule.reached_only and self._region not in deploy.reached:
            return  # the region still runs the old version: no evidence about the new one
        num = values.get(self._num, 0.0 if self.rule.spec.is_rate else None)
        if num is None or not 0.0 <= num < math.inf:
            return
        den = 0.0
        if self.rule.spec.is_rate:
            found = values.get(self._den)
            if found is None or not num <= found < math.inf:
                return  # a glitch (more errors than requests, NaN): no evidence, no crash
            den = found
        span = self.span
        index = ts // BUCKET_MS
        if index != span.index:
            if index < span.index:
                return  # late for a span already paired: no evidence
            if span.index >= 0:
                self._pair(span, deploy.started_at_ms, ts)
            span.start(index)
        span.add(num, den, values.get("requests"))

    def _pair(self, span: SpanSums, started_at_ms: int, at_ms: int) -> None:
        """Feed the test one finished span and the pre-deploy bucket ``before`` earlier."""
        lo = (span.index - self._lag) * BUCKET_MS
        store = self._service.region_buckets(self._region) if self._service else None
        if store is None or lo + BUCKET_MS > started_at_ms:
            return  # that bucket is (partly) after the start: nothing to compare with
        num, den, count = store.query(self.rule.measure, lo, lo + BUCKET_MS)  # type: ignore[arg-type]
        if count == 0:
            return  # no traffic in that bucket (or it has left the ring)
        test, state = self.test, self.state
        if isinstance(test, RateTest):
            if 0.0 <= num <= den and span.den > 0.0:
                test.update(state, span.den, span.num, den, num, at_ms)  # type: ignore[arg-type]
            return
        assert isinstance(test, ShiftTest)  # noqa: S101 - not a rate: a gauge
        assert isinstance(state, ShiftState)  # noqa: S101
        if count != span.count:
            # Means of unequally many samples are not alike under "no change": skip the pair.
            test.skip(state, at_ms)
            return
        _, requests, sized = store.query(REQUESTS, lo, lo + BUCKET_MS)
        ref_requests = requests / count if sized == count else None
        own_requests = span.requests / span.count if span.requests >= 0.0 else None
        test.update(state, span.num / span.count, num / count, at_ms, own_requests, ref_requests)

    def evidence(self) -> dict[str, Any]:
        """The test's evidence as plain JSON values."""
        out: dict[str, Any] = msgspec.to_builtins(self.test.evidence(self.state), enc_hook=int)  # type: ignore[arg-type]
        return out

    def describe(self) -> str:
        """The hypothesis in words, e.g. ``rate ratio >= 2``."""
        return self.test.describe()

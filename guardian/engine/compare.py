"""Statistical comparison of a canary with the stable cohort: one test per rule and region.

A ``compare`` rule is judged by an anytime-valid test (``guardian.stats``)
instead of a window and a threshold. ``Comparison`` holds one deploy's test
for one rule in one region: the canary series feeds ``feed_canary``, the
stable series of the same region ``feed_stable``, on every metric event
while a deploy is live. Rates pair both cohorts' counts over shared spans
(``CountPairing``); gauges pair each canary sample with stable's latest
(``LatestSample``). The verdict ``worse`` makes the rule hold at once (no
``for``, no volume floor: the test's confidence is the safeguard).

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
few numbers per test, never a buffer of samples.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import msgspec

from guardian.engine.rules.compiled import CompiledRule, StatTest
from guardian.stats import CountPairing, LatestSample, RateState, RateTest, ShiftState
from guardian.stats.evidence import Verdict

# One series' way into a test: (event time, values, deploy id).
Feed = Callable[[int, dict[str, float], str], None]


class ComparisonSnapshot(msgspec.Struct, kw_only=True):
    """One running test as saved in an engine snapshot: plain numbers, by field name."""

    rule: str
    region: str
    hypothesis: str  # ``hypothesis_of(rule)`` when saved: restored only under the same one
    deploy_id: str | None
    state: dict[str, Any]  # the test's state (``RateState`` / ``ShiftState``)
    pairing: dict[str, Any]  # counts of the span being paired (``CountPairing``)
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
    return json.dumps(
        {
            "measure": rule.measure,
            "aggregate": rule.aggregate,
            "match": spec.match.model_dump(mode="json"),
            "regions": spec.regions,
            "compare": spec.compare.model_dump(mode="json"),
        },
        sort_keys=True,
    )


class Comparison:
    """One deploy's test of one rule in one region; fed by both cohorts' series."""

    __slots__ = (
        "_den",
        "_num",
        "deploy_id",
        "feed_canary",
        "feed_stable",
        "hypothesis",
        "latest",
        "max_age_ms",
        "pairing",
        "rule",
        "state",
        "test",
    )

    def __init__(self, rule: CompiledRule, test: StatTest) -> None:
        """A test of ``rule`` that has seen nothing yet."""
        self.rule = rule
        self.test = test
        self.hypothesis = hypothesis_of(rule)
        compare = rule.spec.compare
        self.max_age_ms = compare.max_age if compare is not None else 0
        self.deploy_id: str | None = None
        self.state: RateState | ShiftState = test.start()
        self.pairing = CountPairing()
        self.latest = LatestSample()
        measure = rule.measure
        assert measure is not None  # noqa: S101 - compare rules are metric rules
        self._num, self._den = measure[0], measure[1] or "requests"
        # What one event of each cohort does (``Feed``), chosen once for the hot path.
        self.feed_canary: Feed
        self.feed_stable: Feed
        if isinstance(test, RateTest):
            self.feed_canary, self.feed_stable = self._rate_canary, self._rate_stable
        else:
            self.feed_canary, self.feed_stable = self._gauge_canary, self._gauge_stable

    def restart(self, deploy_id: str | None) -> None:
        """Fresh evidence for a new deploy."""
        self.deploy_id = deploy_id
        self.state = self.test.start()
        self.pairing = CountPairing()
        self.latest = LatestSample()

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
            pairing=self.pairing.to_dict(),
            latest=self.latest.to_dict(),
        )

    def load(self, saved: ComparisonSnapshot) -> bool:
        """Take back a saved test of the same hypothesis; False (and no change) if not."""
        if saved.hypothesis != self.hypothesis:
            return False
        fresh = self.test.start()
        try:
            state = type(fresh).from_dict(saved.state)
            pairing = CountPairing.from_dict(saved.pairing)
            latest = LatestSample.from_dict(saved.latest)
        except ValueError:
            return False  # saved by a guardian whose test keeps other numbers: start afresh
        if not _same_shape(state.to_dict(), fresh.to_dict()):
            return False
        self.deploy_id = saved.deploy_id
        self.state, self.pairing, self.latest = state, pairing, latest
        return True

    def _rate_canary(self, ts: int, values: dict[str, float], deploy_id: str) -> None:
        self._rate(True, ts, values, deploy_id)

    def _rate_stable(self, ts: int, values: dict[str, float], deploy_id: str) -> None:
        self._rate(False, ts, values, deploy_id)

    def _rate(self, canary: bool, ts: int, values: dict[str, float], deploy_id: str) -> None:
        if deploy_id != self.deploy_id:
            self.restart(deploy_id)
        requests = values.get(self._den)
        if requests is None:
            return
        errors = values.get(self._num, 0.0)
        if not 0.0 <= errors <= requests < math.inf:
            return  # a glitch (more errors than requests, NaN): no evidence, no crash
        pair = self.pairing.add("canary" if canary else "stable", requests, errors)
        if pair is not None:
            self.test.update(self.state, *pair, ts)  # type: ignore[arg-type]

    def _gauge_canary(self, ts: int, values: dict[str, float], deploy_id: str) -> None:
        if deploy_id != self.deploy_id:
            self.restart(deploy_id)
        value = values.get(self._num)
        if value is None or not 0.0 <= value < math.inf:
            return
        latest = self.latest
        ref = latest.fresh(ts, self.max_age_ms)
        if ref is not None:
            requests = values.get("requests")
            self.test.update(self.state, value, ref, ts, requests, latest.requests)  # type: ignore[arg-type]

    def _gauge_stable(self, ts: int, values: dict[str, float], deploy_id: str) -> None:
        if deploy_id != self.deploy_id:
            self.restart(deploy_id)
        value = values.get(self._num)
        if value is not None and 0.0 <= value < math.inf:
            self.latest.set(value, ts, values.get("requests"))

    def evidence(self) -> dict[str, Any]:
        """The test's evidence as plain JSON values."""
        out: dict[str, Any] = msgspec.to_builtins(self.test.evidence(self.state), enc_hook=int)  # type: ignore[arg-type]
        return out

    def describe(self) -> str:
        """The hypothesis in words, e.g. ``rate ratio >= 2``."""
        return self.test.describe()

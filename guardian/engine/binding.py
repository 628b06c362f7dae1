"""Which rules watch a series, and the windows they read: bindings built once per series.

A series is matched against its service's plan when first seen (and again on
a hot reload, keeping windows whose key did not change and the progress of
rules that kept their name). Reference cohorts (stable/baseline) also keep
the windows canary rules compare against. A rule with a no-data alert gets
its first silence check here.

Rules that judge only a live deploy (``applies: during_deploy``) cost a
binding and a window each on every series; most services have no live deploy
most of the time. So they are bound only while their service has a deploy
live (``attach`` when one opens, or when a series is first seen during one)
and unbound again (``detach``) once it has stopped being live for a while:
their progress restarts with every deploy anyway, and their windows are
refilled from the series' remembered samples when a deploy opens. ``compare``
rules are deploy-only too: a test covers one deploy, starts afresh with the
next, and is fed the samples since the deploy's start when it opens
(``Firing.catch_up``); their tests are dropped when they are unbound. Rules
with a no-data alert stay bound always (their timers run across deploys).

Limits: label matchers are static per series, so matching happens once per
series and rule pack, never per event. ``explain`` of a deploy that ended
long ago lists its always-bound rules only.
"""

from __future__ import annotations

from guardian.engine.compare import Comparison
from guardian.engine.rule_index import RuleIndex
from guardian.engine.rules.compiled import AggKey, CompiledRule
from guardian.engine.state import Binding, Series, ServiceState
from guardian.engine.timers import NoDataCheck, TimerQueue
from guardian.engine.window import SlidingAggregate, Window

# The stable and baseline cohorts both serve as the reference a canary is judged against.
_REFERENCE = {"stable": "reference", "baseline": "reference"}
# ``compare`` rules read their test, not a window: their bindings share this one, never fed.
_NO_WINDOW = SlidingAggregate("", None, None, 0)


def deploy_only(rule: CompiledRule) -> bool:
    """Whether ``rule`` needs no binding while its service has no live deploy."""
    return rule.clipped and rule.spec.no_data.policy != "alert"


def _reference_window(series: Series, rule: CompiledRule, kept: dict[AggKey, Window]) -> None:
    """The window a canary ``rule`` reads from this reference-cohort series (kept if held)."""
    key: AggKey = rule.agg_key  # type: ignore[assignment]
    if key in kept:
        series.adopt(key, kept[key])
    series.aggregate(key)


class Binder:
    """Attaches the rules in force to series (and re-attaches them after a reload)."""

    __slots__ = ("_rules", "_timers")

    def __init__(self, rules: RuleIndex, timers: TimerQueue) -> None:
        self._rules = rules
        self._timers = timers

    def bind(
        self,
        st: ServiceState,
        series: Series,
        kept: dict[AggKey, Window] | None = None,
        old: dict[str, Binding] | None = None,
        *,
        timers: bool = True,
    ) -> None:
        """Attach every rule of ``st``'s plan that watches ``series``, reusing ``kept`` windows.

        Deploy-only rules are left out unless a deploy is live. ``timers`` False
        pushes no no-data check (the series already has them).
        """
        kept = kept or {}
        old = old or {}
        ring = self._rules.ring
        region, cohort = series.region, series.cohort
        live = series.deploy_bound = st.deploy_live
        for r in st.plan.rules:
            if not r.region(region) or (not live and deploy_only(r)):
                continue
            if r.cohort(cohort):
                for key in (r.agg_key, r.volume_key):
                    if key is not None and key in kept:
                        series.adopt(key, kept[key])
                if r.stat_test is not None:
                    agg: Window = _NO_WINDOW
                else:
                    agg = series.aggregate(r.agg_key, ring(r.agg_key))  # type: ignore[arg-type]
                vol = series.aggregate(r.volume_key, ring(r.volume_key)) if r.volume_key else None
                b = old.get(r.name)
                if b is not None and b.agg is agg:
                    b.rule, b.volume = r, vol
                else:
                    b = Binding(r, series, agg, vol)
                series.bindings.append(b)
                if r.stat_test is not None:
                    b.comparison = self._comparison(st, r, region)
                    series.stat_feeds.append(b.comparison.feed_canary)
                if timers and r.spec.no_data.policy == "alert":
                    self._timers.push(st.watermark + r.spec.no_data.after, NoDataCheck(st, b))
            elif r.stat_test is not None:
                compare = r.spec.compare
                # The cohort ``compare: {baseline: stable}`` names (``before`` has none).
                if cohort == "stable" and compare is not None and compare.baseline == "stable":
                    series.stat_feeds.append(self._comparison(st, r, region).feed_stable)
            elif r.baseline is not None and _REFERENCE.get(r.baseline.baseline) == _REFERENCE.get(
                cohort, "-"
            ):  # a reference cohort for canary rules: keep the same window for comparison
                _reference_window(series, r, kept)
        series.buckets = st.region_buckets(region)
        series.undeployed = [b for b in series.bindings if not b.rule.clipped]
        series.eval_at = 0

    @staticmethod
    def _comparison(st: ServiceState, rule: CompiledRule, region: str) -> Comparison:
        """The region's test of ``rule``, shared by its canary and stable series."""
        key = (rule.name, region)
        found = st.comparisons.get(key)
        if found is None:
            assert rule.stat_test is not None  # noqa: S101 - only called for compare rules
            found = st.comparisons[key] = Comparison(rule, rule.stat_test, st, region)
        return found

    def attach(self, st: ServiceState) -> None:
        """A deploy went live: bind its deploy-only rules on every series, in plan order.

        Rules already bound keep their binding and progress; the new windows are
        empty until the deploy's catch-up refills them.
        """
        for series in st.series.values():
            if not series.deploy_bound:
                self._rebuild(st, series)

    def detach(self, st: ServiceState) -> None:
        """No deploy is live: unbind deploy-only rules and drop their windows, series by series."""
        for series in st.series.values():
            if series.deploy_bound:
                self._rebuild(st, series)
        st.comparisons = {k: c for k, c in st.comparisons.items() if not deploy_only(c.rule)}
        st.released_ms = -1  # nothing left to unbind until the next deploy ends

    def _rebuild(self, st: ServiceState, series: Series) -> None:
        old = {b.rule.name: b for b in series.bindings}
        self.bind(st, series, series.rebind(), old, timers=False)

    def rebind(self, st: ServiceState) -> None:
        """After a reload: bind ``st``'s series to its new plan, keeping windows and progress.

        A ``compare`` test carries on if its rule still tests the same hypothesis
        (``Comparison.adopt``) and restarts if the rule is gone or its measure,
        matchers or ``compare`` parameters changed: its evidence was for another.
        """
        rules = {r.name: r for r in st.plan.rules}
        st.comparisons = {
            key: comparison
            for key, comparison in st.comparisons.items()
            if key[0] in rules
            and (st.deploy_live or not deploy_only(rules[key[0]]))
            and comparison.adopt(rules[key[0]])
        }
        for series in st.series.values():
            old = {b.rule.name: b for b in series.bindings}
            kept = series.rebind()
            self.bind(st, series, kept, old)
            series.prune_rings()

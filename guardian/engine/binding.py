"""Which rules watch a series, and the windows they read: bindings built once per series.

A series is matched against its service's plan when first seen (and again on
a hot reload, keeping windows whose key did not change and the progress of
rules that kept their name). Reference cohorts (stable/baseline) also keep
the windows canary rules compare against. A rule with a no-data alert gets
its first silence check here.

Limits: label matchers are static per series, so matching happens once per
series and rule pack, never per event.
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
    ) -> None:
        """Attach every rule of ``st``'s plan that watches ``series``, reusing ``kept`` windows."""
        kept = kept or {}
        old = old or {}
        ring = self._rules.ring
        region, cohort = series.region, series.cohort
        for r in st.plan.rules:
            if not r.region(region):
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
                if r.spec.no_data.policy == "alert":
                    self._timers.push(st.watermark + r.spec.no_data.after, NoDataCheck(st, b))
            elif r.stat_test is not None:
                if cohort == "stable":  # the cohort ``compare: {baseline: stable}`` names
                    series.stat_feeds.append(self._comparison(st, r, region).feed_stable)
            elif r.baseline is not None and _REFERENCE.get(r.baseline.baseline) == _REFERENCE.get(
                cohort, "-"
            ):  # a reference cohort for canary rules: keep the same window for comparison
                series.aggregate(r.agg_key)  # type: ignore[arg-type]
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
            found = st.comparisons[key] = Comparison(rule, rule.stat_test)
        return found

    def rebind(self, st: ServiceState) -> None:
        """After a reload: bind ``st``'s series to its new plan, keeping windows and progress.

        ``compare`` tests restart: the hypothesis may have changed.
        """
        st.comparisons = {}
        for series in st.series.values():
            old = {b.rule.name: b for b in series.bindings}
            kept = series.rebind()
            self.bind(st, series, kept, old)
            series.prune_rings()

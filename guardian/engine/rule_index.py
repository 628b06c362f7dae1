"""The rule pack in force, compiled and indexed: what every other engine part asks of the rules.

``RuleIndex`` compiles a ``RuleSet`` and answers: which metric rules watch a
service and which pre-deploy measures they need (a ``Plan``, shared by every
service the same rules match), which windows a bucketed ring may serve, the
check rules, how long the longest bake lasts, when a rollback escalates, and
which rules were disabled after failing to evaluate. A hot reload installs a
new pack into the same index, so everything holding it sees the new rules.

Limits: plans are interned by the set of rules they hold (a handful for a
whole fleet); per-service results are not cached here, services keep their plan.
"""

from __future__ import annotations

from guardian.engine.compare import REQUESTS
from guardian.engine.rules.compiled import AggKey, CompiledRule, MeasureKey, compile_rules
from guardian.engine.rules.loader import RuleSet
from guardian.engine.rules.model import Settings as PackSettings
from guardian.engine.state import DeployState, Plan
from guardian.engine.window import BUCKET_MS, RING_AGGREGATES

_RING_MIN_WINDOW_MS = 60_000  # shorter windows keep exact samples


class RuleIndex:
    """The compiled rules and what is derived from them; replaced in place on a reload."""

    def __init__(self, rules: RuleSet, *, allowed_lateness_ms: int) -> None:
        self._lateness = allowed_lateness_ms
        # Rules disabled after raising during evaluation, with the error; a reload clears it.
        self.errors: dict[str, str] = {}
        self.install(rules)

    def install(self, rules: RuleSet) -> None:
        """Take over a new pack (every service must then get a new plan)."""
        self.rules = rules
        self.settings: PackSettings = rules.settings
        self.errors.clear()  # cleared in place: the firing policy holds this dict
        self.compiled: list[CompiledRule] = compile_rules(rules)
        self.metric_rules = [r for r in self.compiled if r.agg_key is not None]
        self.check_rules = [r for r in self.compiled if r.spec.check is not None]
        self._exact_keys = {
            r.agg_key for r in self.metric_rules if r.aggregate not in RING_AGGREGATES
        }
        self.bake_ms = max((r.bake_ms or 0 for r in self.compiled), default=0)
        self._plans: dict[tuple[int, ...], Plan] = {}

    def plan(self, service: str, environment: str) -> Plan:
        """The metric rules watching ``service`` in ``environment``, and their baseline needs."""
        chosen = tuple(
            i
            for i, r in enumerate(self.metric_rules)
            if r.service(service) and r.environment(environment)
        )
        plan = self._plans.get(chosen)
        if plan is None:
            rules = tuple(self.metric_rules[i] for i in chosen)
            measures: dict[MeasureKey, int] = {}
            for r in rules:
                if r.baseline is not None and r.baseline.baseline == "pre_deploy" and r.measure:
                    keep = r.baseline.baseline_window + self._lateness + 2 * BUCKET_MS
                    measures[r.measure] = max(keep, measures.get(r.measure, 0))
                compare = r.spec.compare
                if compare is not None and compare.baseline == "before" and r.measure:
                    # Each span after the deploy reads the bucket ``before`` earlier, once the
                    # span is over (a few buckets later at most, plus the lateness).
                    keep = compare.before + self._lateness + 4 * BUCKET_MS
                    needed = [r.measure] if r.spec.is_rate else [r.measure, REQUESTS]
                    for measure in needed:
                        measures[measure] = max(keep, measures.get(measure, 0))
            plan = self._plans[chosen] = Plan(rules, measures)
        return plan

    def ring(self, key: AggKey | None) -> bool:
        """Whether a bucketed ring can serve this window (long, unclipped, sums only)."""
        return (
            key is not None
            and not key[4]
            and key[3] >= _RING_MIN_WINDOW_MS
            and key not in self._exact_keys
        )

    def escalation_due(self, deploy: DeployState) -> int:
        """When ``deploy``'s rollback escalates if no executor confirms it (it must have one)."""
        rollback = deploy.rollback
        assert rollback is not None  # noqa: S101 - only asked about a deploy with a rollback
        settings = self.settings
        timeout = settings.rollback_timeout_by_strategy.get(
            deploy.strategy,  # type: ignore[call-overload]
            settings.rollback_timeout,
        )
        return rollback.at_ms + int(timeout)

"""What rules do once their condition is known: the firing policy.

``Firing.judge`` evaluates the rules bound to a series that apply now;
``step`` advances one binding's ``for`` clock, cooldown and firing state;
``fire`` builds the evidence when a rule fires; ``decide`` applies the
policies that span rules — one rollback and one pause per deploy (later
firings join the deploy's incident), and the escalation timer of a rollback.

``catch_up`` is what makes the winner independent of arrival order: a
deploy learnt of after samples at or after its start (its event came in a
later fetch than those metrics, or after them in one batch) has its rules
judged on those samples in event-time order, exactly as if the deploy had
been seen first. Which rule fires first, and when, then depends on event
times only.

Limits: this is the hot path (every metric event of a series with a live
deploy comes through ``judge``); a rule that raises while being evaluated is
disabled (``RuleIndex.errors``) and the others keep judging.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from guardian.engine.decision import Decision
from guardian.engine.evaluate import (
    compare_evidence,
    compare_reason,
    evaluate,
    evidence,
    pre_deploy_baseline,
    reason_text,
    resolved_decision,
)
from guardian.engine.rule_index import RuleIndex
from guardian.engine.rules.compiled import CompiledRule
from guardian.engine.state import Binding, DeployState, Series, ServiceState
from guardian.engine.timers import Escalation, TimerQueue

_NONE: list[Decision] = []
_CONTEXT_BASELINE_MS = 30 * 60_000
_NOTHING_DUE = 1 << 62
_by_time_then_series = itemgetter(0, 1)


def _in_scope(rule: CompiledRule, deploy: DeployState | None, applies: bool, region: str) -> bool:
    """Whether a rule's ``applies`` and deploy matchers let it judge this series now."""
    if rule.scope == "during_deploy":
        if not applies or deploy is None:
            return False
        if not rule.matches_deploy(deploy.strategy, deploy.component):
            return False
        return not (rule.reached_only and deploy.reached and region not in deploy.reached)
    return not (rule.scope == "outside_deploy" and applies)


class Firing:
    """The firing policy over bindings; sets escalation timers for the rollbacks it decides."""

    __slots__ = ("_errors", "_rules", "_timers")

    def __init__(self, rules: RuleIndex, timers: TimerQueue) -> None:
        self._rules = rules
        self._timers = timers
        self._errors = rules.errors  # the same dict for the index's lifetime

    def judge(self, st: ServiceState, series: Series) -> list[Decision]:
        """Judge the rules of ``series`` at its service's event time."""
        if not series.bindings:
            return _NONE
        now = st.watermark
        if st.deploy_live:
            return self.evaluate(st, series, series.bindings, st.deploy, now)
        out = self.evaluate(st, series, series.undeployed, None, now)
        due = [b.next_eval_ms if b.rule.eval_every_ms else 0 for b in series.undeployed]
        series.eval_at = min(due, default=_NOTHING_DUE)
        return out

    def catch_up(self, st: ServiceState, deploy: DeployState) -> list[Decision]:
        """Judge a new deploy's rules on the samples since its start, in event-time order.

        Ties between series are taken in the order the series were first seen.
        """
        pending: list[tuple[int, int, Series, dict[str, float]]] = []
        for order, series in enumerate(st.series.values()):
            series.clear_deploy_windows()
            pending.extend((ts, order, series, v) for ts, v in series.since(deploy.started_at_ms))
        pending.sort(key=_by_time_then_series)
        for comparison in st.comparisons.values():
            comparison.restart(deploy.deploy_id)
        out: list[Decision] = []
        for ts, _, series, values in pending:
            for agg in series.deploy_feeders:
                agg.feed(ts, values, ts)
            for feed in series.stat_feeds:
                feed(ts, values, deploy.deploy_id)
            watching = [b for b in series.bindings if b.rule.clipped]
            if watching:
                out.extend(self.evaluate(st, series, watching, deploy, ts))
        return out

    def evaluate(
        self,
        st: ServiceState,
        series: Series,
        bindings: list[Binding],
        deploy: DeployState | None,
        now: int,
    ) -> list[Decision]:
        """Evaluate ``bindings`` of ``series`` at ``now``; the decisions that stand."""
        active = deploy is not None and deploy.status == "active"
        errors = self._errors
        out: list[Decision] | None = None
        for b in bindings:
            rule = b.rule
            if rule.eval_every_ms:
                if now < b.next_eval_ms:
                    continue
                b.next_eval_ms = now + rule.eval_every_ms
            if deploy is None:
                if rule.clipped:
                    continue  # deploy-scoped, and no deploy is live
                applies = False
            else:
                applies = active or deploy.applies(now, rule.bake_ms)
            if not _in_scope(rule, deploy, applies, series.region):
                continue
            d = deploy if applies else None
            if errors and rule.name in errors:
                continue  # disabled after an evaluation error
            try:
                holds, resolved = evaluate(b, st, d, now)
            except (ArithmeticError, ValueError, TypeError, KeyError, IndexError) as exc:
                # A rule that cannot be evaluated is disabled; the others keep judging.
                errors[rule.name] = f"{type(exc).__name__}: {exc}"
                continue
            if not (holds or b.firing or b.since_ms is not None):
                continue  # quiet and was quiet: nothing to advance
            decision = self.step(b, st, d, now, holds, resolved)
            if decision is not None:
                if out is None:
                    out = []
                out.append(decision)
        return out if out is not None else _NONE

    def step(
        self,
        b: Binding,
        st: ServiceState,
        d: DeployState | None,
        now: int,
        holds: bool,
        resolved: bool,
    ) -> Decision | None:
        """Advance the ``for`` clock, cooldown and firing state of one binding."""
        rule = b.rule
        decision = None
        if holds:
            if b.since_ms is None:
                b.since_ms = now
            if not b.firing and now - b.since_ms >= rule.for_ms:
                if b.last_fired_ms is not None and now - b.last_fired_ms < rule.spec.cooldown:
                    b.last_reason = "cooldown"
                else:
                    decision = self.fire(b, st, d, now)
        else:
            b.since_ms = None
        if resolved and b.firing:
            b.firing = False
            if rule.action == "notify":
                decision = resolved_decision(b, st, d, now)
        return decision

    def fire(
        self, b: Binding, st: ServiceState, deploy: DeployState | None, now: int
    ) -> Decision | None:
        """A rule fires on one series: word it, then let ``decide`` say whether it stands."""
        rule = b.rule
        b.firing = True
        b.last_fired_ms = now
        context = None
        if rule.baseline is None and rule.stat_test is None and deploy is not None:
            value, count = pre_deploy_baseline(
                rule, st, b.series.region, deploy, _CONTEXT_BASELINE_MS
            )
            context = value if count else None
        labels = {"region": b.series.region, "cohort": b.series.cohort}
        if b.comparison is not None:
            reason, ev = compare_reason(b.comparison), compare_evidence(b)
        else:
            reason, ev = reason_text(b, context), evidence(b, context)
        return self.decide(rule, st, deploy, now, reason, ev, labels)

    def decide(
        self,
        rule: CompiledRule,
        st: ServiceState,
        deploy: DeployState | None,
        now: int,
        reason: str,
        ev: dict[str, Any],
        labels: dict[str, str],
    ) -> Decision | None:
        """Apply one-rollback/one-pause per deploy; build the decision if it stands."""
        dry = rule.spec.dry_run
        if deploy is not None and not dry:
            joined = rule.action == "rollback" and deploy.rollback is not None
            joined = joined or (
                rule.action == "pause" and (deploy.paused or deploy.rollback is not None)
            )
            if joined:
                entry = {"at_ms": now, "rule": rule.name, "reason": reason, "evidence": ev}
                deploy.incident.append(entry)
                return None
        if deploy is not None:
            regions = deploy.info().regions or ((labels["region"],) if labels["region"] else ())
        else:
            regions = (labels["region"],) if labels["region"] else ()
        decision = Decision(
            at_ms=now,
            rule=rule.name,
            action=rule.action,  # type: ignore[arg-type]
            severity=rule.severity,  # type: ignore[arg-type]
            service=st.service,
            environment=st.environment,
            deploy=deploy.info() if deploy is not None else None,
            regions=regions,
            reason=reason,
            evidence=ev,
            dry_run=dry,
            labels={k: v for k, v in labels.items() if v},
        )
        if deploy is not None and not dry:
            if rule.action == "rollback":
                deploy.rollback = decision
                self._timers.push(self._rules.escalation_due(deploy), Escalation(st, deploy))
            elif rule.action == "pause":
                deploy.paused = True
            deploy.incident.append({"at_ms": now, "rule": rule.name, "decision": rule.action})
        return decision

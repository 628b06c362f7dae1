"""Deploy lifecycle, check events and due timers.

``on_deploy`` opens, updates and closes deploys (a new ``started`` for another
deploy replaces the previous one; ``completed`` starts the bake; ``rolled_back``
and ``failed`` close it); a new deploy's rules are caught up on the samples
already held since its start (``Firing.catch_up``). ``on_check`` fires check
rules at once (no window). ``fire`` acts on due timers: rollback escalation,
bake end, no-data alerts.

A deploy that does not name its previous version replaces what the service
was last seen running (``ServiceState.saw_version``: metrics' ``version``,
earlier deploys, rollbacks), and learns it from the first other version
seen while it is live when nothing was seen before; otherwise it stays
unknown and its command says so. A ``rolled_back`` or ``failed`` step with
the deploy id ``@live`` closes the service's live deploy, whatever its id
(a CDEvents ``service.rolledback`` names the service, not the deploy).

Limits: a ``started`` that arrives after a later step of the same deploy
moves its start earlier and refills its windows, but does not judge those
samples again (its rules may already have fired on them).
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from guardian.engine.binding import Binder
from guardian.engine.decision import Decision
from guardian.engine.deploys import DeployBook
from guardian.engine.evaluate import format_duration
from guardian.engine.firing import Firing
from guardian.engine.rule_index import RuleIndex
from guardian.engine.rules.compiled import CompiledRule
from guardian.engine.services import ServiceTable
from guardian.engine.state import Binding, DeployState, ServiceState
from guardian.engine.timers import BakeEnd, Escalation, NoDataCheck, Timer, TimerQueue
from guardian.wire.events import LIVE_DEPLOY, CheckEvent, DeployEvent

_NONE: list[Decision] = []


class Lifecycle:
    """Deploy and check events, and what happens when their timers come due."""

    __slots__ = ("_binder", "_deploys", "_firing", "_rules", "_services", "_timers")

    def __init__(
        self,
        services: ServiceTable,
        deploys: DeployBook,
        timers: TimerQueue,
        rules: RuleIndex,
        firing: Firing,
        binder: Binder,
    ) -> None:
        self._binder = binder
        self._services = services
        self._deploys = deploys
        self._timers = timers
        self._rules = rules
        self._firing = firing

    # ------------------------------------------------------------------ deploys
    def on_deploy(self, ev: DeployEvent) -> list[Decision]:
        """Apply one lifecycle step; a new deploy may decide on samples already held."""
        st = self._services.service(ev.service, ev.environment)
        ts: int = ev.timestamp
        st.watermark = max(st.watermark, ts)
        if ev.deploy_id == LIVE_DEPLOY:
            self._close_live(st, ev)
            return _NONE
        deploy = st.deploy
        new = False
        if deploy is None or deploy.deploy_id != ev.deploy_id:
            known = self._deploys.get(ev.deploy_id)
            if known is not None:  # a step for an older deploy (e.g. its rollback finishing)
                if ev.type in ("rolled_back", "failed"):
                    known.status = ev.type
                return _NONE
            if ev.type in ("rolled_back", "failed"):
                return _NONE
            if deploy is not None and ts < deploy.started_at_ms:
                return _NONE  # stale: older than the deploy in force
            deploy = self._open(st, ev)
            new = True
        elif ev.type == "started" and ts < deploy.started_at_ms:
            # ``started`` arrived after a later step of the same deploy: it started earlier.
            deploy.started_at_ms = ts
            for series in st.series.values():
                series.backfill(ts, st.watermark)
        deploy.event_ms[ev.type] = ts
        deploy.version = ev.version
        deploy.previous_version = (
            ev.previous_version or deploy.previous_version or st.version_before(ev.version)
        )
        st.saw_version(ev.version)
        deploy.strategy = ev.strategy
        deploy.component = ev.component
        if ev.regions:
            deploy.regions = tuple(ev.regions)
            deploy.reached.extend(r for r in ev.regions if r not in deploy.reached)
        if ev.type == "completed":
            if deploy.status == "active":
                deploy.status = "baking"
                deploy.completed_at_ms = ts
                self._timers.push(ts + self._rules.bake_ms, BakeEnd(st, deploy))
        elif ev.type in ("rolled_back", "failed"):
            deploy.status = ev.type
            st.release()
            if ev.type == "rolled_back" and deploy.previous_version is not None:
                st.saw_version(deploy.previous_version)  # what runs again
        return self._firing.catch_up(st, deploy) if new else _NONE

    def _close_live(self, st: ServiceState, ev: DeployEvent) -> None:
        """A rolled_back or failed step for the service's live deploy, whatever its id."""
        if ev.type not in ("rolled_back", "failed"):
            return  # refused when decoded
        if ev.type == "rolled_back":
            st.saw_version(ev.version)  # the version running after the rollback
        deploy = st.deploy
        if deploy is None or deploy.closed or ev.timestamp < deploy.started_at_ms:
            return
        deploy.event_ms[ev.type] = ev.timestamp
        deploy.status = ev.type
        st.release()

    def _open(self, st: ServiceState, ev: DeployEvent) -> DeployState:
        deploy = DeployState(ev.deploy_id, st.service, st.environment, ev.timestamp)
        self._deploys.open(deploy, replaces=st.deploy)
        st.deploy = deploy
        st.deploy_live = True
        self._binder.attach(st)  # deploy-only rules, unbound while no deploy was live
        for series in st.series.values():
            for b in series.bindings:
                if b.rule.scope == "during_deploy":
                    b.reset()
        return deploy

    # ------------------------------------------------------------------ checks
    def on_check(self, ev: CheckEvent) -> list[Decision]:
        """Fire every check rule that a failing (or warning) check satisfies."""
        st = self._services.service(ev.service, ev.environment)
        ts: int = ev.timestamp
        if not self._services.observe(st, ts) or ev.status == "pass":
            return _NONE
        deploy = st.deploy
        same = deploy is not None and (ev.deploy_id is None or ev.deploy_id == deploy.deploy_id)
        now = st.watermark
        region = ev.region or ""
        out: list[Decision] = []
        for rule in self._rules.check_rules:
            spec = rule.spec.check
            assert spec is not None  # noqa: S101 - check rules have a check spec
            if not _check_matches(rule, st, ev, region):
                continue
            applies = same and deploy is not None and deploy.applies(now, rule.bake_ms)
            d = deploy if applies else None
            if rule.scope == "during_deploy":
                if d is None or not rule.matches_deploy(d.strategy, d.component):
                    continue
                if spec.within is not None and not _within(d, ts, spec.within, spec.after):
                    continue
            elif rule.scope == "outside_deploy" and applies:
                continue
            key = (rule.name, region, ev.check, d.deploy_id if d is not None else "")
            last = st.check_fired.get(key)
            if last is not None and now - last < rule.spec.cooldown:
                continue
            st.check_fired[key] = now
            reason = f"check {ev.check} {ev.status}"
            if region:
                reason += f" in {region}"
            if d is not None and spec.within is not None:
                reason += f" within {format_duration(spec.within)} after {'/'.join(spec.after)}"
            if ev.detail:
                reason += f": {ev.detail}"
            evidence = {
                "check": ev.check,
                "status": ev.status,
                "detail": ev.detail,
                "region": ev.region,
                "checked_at_ms": ts,
            }
            labels = {"region": region, "check": ev.check}
            decision = self._firing.decide(rule, st, d, now, reason, evidence, labels)
            if decision is not None:
                out.append(decision)
        return out

    # ------------------------------------------------------------------ timers
    def fire(self, due: int, timer: Timer, now_ms: int) -> Decision | None:
        """Act on one timer due at ``due``, now that event time reached ``now_ms``."""
        if type(timer) is Escalation:
            return self._escalate(timer, due)
        if type(timer) is BakeEnd:
            deploy = timer.deploy
            if deploy.status == "baking":
                deploy.status = "completed"
                if timer.service.deploy is deploy:
                    timer.service.release()
            return None
        assert type(timer) is NoDataCheck  # noqa: S101 - the last kind of timer
        return self._no_data(timer.binding, timer.service, now_ms)

    def _escalate(self, timer: Escalation, due: int) -> Decision | None:
        deploy, st = timer.deploy, timer.service
        if deploy.closed or deploy.escalated or deploy.rollback is None:
            return None
        deploy.escalated = True
        rollback = deploy.rollback
        waited = format_duration(due - rollback.at_ms)
        return Decision(
            at_ms=due,
            rule=rollback.rule,
            action="escalate",
            severity="critical",
            service=st.service,
            environment=st.environment,
            deploy=deploy.info(),
            regions=rollback.regions,
            reason=f"no rolled_back or failed event {waited} after the rollback decision",
            evidence={
                "rollback_at_ms": rollback.at_ms,
                "timeout_s": (due - rollback.at_ms) // 1000,
            },
        )

    def _no_data(self, b: Binding, st: ServiceState, now: int) -> Decision | None:
        """A silence check at ``now``: alert (once per silence) if the series said nothing."""
        rule = b.rule
        if b not in b.series.bindings:
            return None  # the rule was reloaded away
        after = rule.spec.no_data.after
        last = b.series.last_ts
        if last + after > now:
            self._timers.push(last + after, NoDataCheck(st, b))
            return None
        self._timers.push(now + after, NoDataCheck(st, b))
        deploy = st.deploy
        applies = deploy is not None and deploy.applies(now, rule.bake_ms)
        if rule.scope == "during_deploy" and not applies:
            return None
        if (rule.scope == "outside_deploy" and applies) or b.nodata_fired == last:
            return None
        b.nodata_fired = last  # one alert per silence
        reason = f"no data for {rule.label} for {format_duration(now - max(last, 0))}"
        labels = {"region": b.series.region, "cohort": b.series.cohort}
        evidence = {"metric": rule.spec.metric, "last_sample_ms": last if last >= 0 else None}
        d = deploy if applies else None
        return self._firing.decide(rule, st, d, now, reason, evidence, labels)


def _check_matches(rule: CompiledRule, st: ServiceState, ev: CheckEvent, region: str) -> bool:
    spec = rule.spec.check
    assert spec is not None  # noqa: S101 - check rules have a check spec
    if ev.status == "warn" and spec.status == "fail":
        return False
    if not (rule.service(st.service) and rule.environment(st.environment)):
        return False
    return rule.region(region) and any(fnmatchcase(ev.check, p) for p in spec.names)


def _within(deploy: DeployState, ts: int, within: int, after: tuple[str, ...]) -> bool:
    for kind in after:
        at = deploy.started_at_ms if kind == "started" else deploy.event_ms.get(kind)
        if at is not None and 0 <= ts - at <= within:
            return True
    return False

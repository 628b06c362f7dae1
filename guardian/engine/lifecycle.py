"""Deploy lifecycle, check events and the passage of event time, for the engine.

``on_deploy`` opens, updates and closes deploys (a new ``started`` for another
deploy replaces the previous one; ``completed`` starts the bake; ``rolled_back``
and ``failed`` close it). ``on_check`` fires check rules at once (no window).
``advance`` pops due timers: rollback escalation, bake end, no-data alerts.

Limits: functions over the engine's private state, split out of
``engine.py`` only to keep modules small; nothing here is public API.
"""

from __future__ import annotations

import heapq
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from guardian.engine.decision import Decision
from guardian.engine.evaluate import format_duration
from guardian.engine.firing import decide
from guardian.engine.rules.compiled import CompiledRule
from guardian.engine.state import Binding, DeployState, ServiceState
from guardian.wire.events import CheckEvent, DeployEvent

if TYPE_CHECKING:
    from guardian.engine.engine import Engine

_NONE: list[Decision] = []


def _new_deploy(engine: Engine, st: ServiceState, ev: DeployEvent) -> DeployState:
    old = st.deploy
    if old is not None and not old.incident:
        engine._deploys.pop(old.deploy_id, None)  # keep only deploys with something to explain
    deploy = DeployState(ev.deploy_id, st.service, st.environment, ev.timestamp)
    st.deploy = deploy
    engine._deploys[ev.deploy_id] = (st, deploy)
    st.deploy_live = True
    for series in st.series.values():
        series.backfill(deploy.started_at_ms, st.watermark)
        for b in series.bindings:
            if b.rule.scope == "during_deploy":
                b.reset()
    return deploy


def on_deploy(engine: Engine, ev: DeployEvent) -> list[Decision]:
    """Apply one lifecycle step; deploy events themselves decide nothing."""
    st = engine._service(ev.service, ev.environment)
    ts: int = ev.timestamp
    st.watermark = max(st.watermark, ts)
    deploy = st.deploy
    if deploy is None or deploy.deploy_id != ev.deploy_id:
        known = engine._deploys.get(ev.deploy_id)
        if known is not None:  # a step for an older deploy (e.g. its rollback finishing)
            if ev.type in ("rolled_back", "failed"):
                known[1].status = ev.type
            return _NONE
        if ev.type in ("rolled_back", "failed"):
            return _NONE
        if deploy is not None and ts < deploy.started_at_ms:
            return _NONE  # stale: older than the deploy in force
        deploy = _new_deploy(engine, st, ev)
    elif ev.type == "started" and ts < deploy.started_at_ms:
        # ``started`` arrived after a later step of the same deploy: it started earlier.
        deploy.started_at_ms = ts
        for series in st.series.values():
            series.backfill(ts, st.watermark)
    deploy.event_ms[ev.type] = ts
    deploy.version = ev.version
    deploy.previous_version = ev.previous_version or deploy.previous_version
    deploy.strategy = ev.strategy
    deploy.component = ev.component
    if ev.regions:
        deploy.regions = tuple(ev.regions)
        deploy.reached.extend(r for r in ev.regions if r not in deploy.reached)
    if ev.type == "completed":
        if deploy.status == "active":
            deploy.status = "baking"
            deploy.completed_at_ms = ts
            bake = max((r.bake_ms or 0 for r in engine._compiled), default=0)
            engine._push(ts + bake, "bake", deploy, st)
    elif ev.type in ("rolled_back", "failed"):
        deploy.status = ev.type
        st.release()
    return _NONE


def _check_applies(
    engine: Engine, st: ServiceState, ev: CheckEvent
) -> tuple[DeployState | None, bool]:
    deploy = st.deploy
    if deploy is None or (ev.deploy_id is not None and ev.deploy_id != deploy.deploy_id):
        return None, False
    return deploy, True


def on_check(engine: Engine, ev: CheckEvent) -> list[Decision]:
    """Fire every check rule that a failing (or warning) check satisfies."""
    st = engine._service(ev.service, ev.environment)
    ts: int = ev.timestamp
    if ts > st.watermark:
        st.watermark = ts
    elif ts < st.watermark - engine._lateness:
        engine._late += 1
        return _NONE
    if ev.status == "pass":
        return _NONE
    deploy, same = _check_applies(engine, st, ev)
    now = st.watermark
    region = ev.region or ""
    out: list[Decision] = []
    for rule in engine._check_rules:
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
        decision = decide(engine, rule, st, d, now, reason, evidence, labels)
        if decision is not None:
            out.append(decision)
    return out


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


def advance(engine: Engine, now_ms: int) -> list[Decision]:
    """Pop and act on every timer due at or before ``now_ms``."""
    out: list[Decision] = []
    timers = engine._timers
    while timers and timers[0][0] <= now_ms:
        due, _, kind, a, b = heapq.heappop(timers)
        if kind == "escalate":
            decision = _escalate(engine, a, b, due)
        elif kind == "bake":
            if a.status == "baking":
                a.status = "completed"
                if b.deploy is a:
                    b.release()
            continue
        else:
            decision = _no_data(engine, a, b, now_ms)
        if decision is not None:
            out.append(decision)
    return out


def _escalate(engine: Engine, deploy: DeployState, st: ServiceState, due: int) -> Decision | None:
    if deploy.status in ("rolled_back", "failed") or deploy.escalated or deploy.rollback is None:
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
        evidence={"rollback_at_ms": rollback.at_ms, "timeout_s": (due - rollback.at_ms) // 1000},
    )


def _no_data(engine: Engine, b: Binding, st: ServiceState, now: int) -> Decision | None:
    rule = b.rule
    if b not in b.series.bindings:
        return None  # the rule was reloaded away
    after = rule.spec.no_data.after
    last = b.series.last_ts
    if last + after > now:
        engine._push(last + after, "nodata", b, st)
        return None
    engine._push(now + after, "nodata", b, st)
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
    return decide(engine, rule, st, deploy if applies else None, now, reason, evidence, labels)

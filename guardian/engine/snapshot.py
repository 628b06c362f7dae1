"""One (service, environment)'s engine state as plain JSON-able data, and back.

The daemon can write ``Engine.snapshot(service, environment)`` to a compacted
changelog topic keyed by service and ``Engine.restore`` it after a restart or
a partition move, so windows, baselines, the deploy and "already rolled back"
survive. Rules are not part of a snapshot: bindings are rebuilt from the rules
in force and take back their progress by rule name.

Limits: samples kept for exact-duplicate detection are not saved (a duplicate
straddling a restart counts twice), nor are the bucketed rings of long
non-deploy windows (alerts), which refill within their window; the format is versioned (``v``) and a
snapshot of another version is refused.
"""

from __future__ import annotations

from array import array
from collections import deque
from typing import TYPE_CHECKING, Any

from guardian.engine.decision import Decision
from guardian.engine.state import DeployState, Series, ServiceState
from guardian.engine.window import SlidingAggregate

if TYPE_CHECKING:
    from guardian.engine.engine import Engine

VERSION = 2  # 2: denominators of ratio measures only, counts as int32


def _deploy_data(d: DeployState) -> dict[str, Any]:
    rollback = d.rollback
    return {
        "deploy_id": d.deploy_id,
        "started_at_ms": d.started_at_ms,
        "version": d.version,
        "previous_version": d.previous_version,
        "strategy": d.strategy,
        "component": d.component,
        "regions": list(d.regions),
        "reached": list(d.reached),
        "status": d.status,
        "completed_at_ms": d.completed_at_ms,
        "event_ms": dict(d.event_ms),
        "paused": d.paused,
        "escalated": d.escalated,
        "incident": list(d.incident),
        "rollback": None
        if rollback is None
        else {
            "at_ms": rollback.at_ms,
            "rule": rollback.rule,
            "regions": list(rollback.regions),
            "reason": rollback.reason,
            "evidence": rollback.evidence,
        },
    }


def snapshot_service(st: ServiceState) -> dict[str, Any]:
    """Everything the engine holds for one service, as JSON-able data."""
    series = [
        {
            "region": s.region,
            "cohort": s.cohort,
            "last_ts": s.last_ts,
            "aggs": [[list(k), [list(e) for e in a.entries]] for k, a in s.aggs.items()],
            "bindings": {b.rule.name: [b.since_ms, b.firing, b.last_fired_ms] for b in s.bindings},
        }
        for s in st.series.values()
    ]
    for store in st.baselines.values():
        store.flush()
    baselines = {
        region: {
            "measures": [list(m[:3]) for m in store.measures],
            "starts": list(store.starts),
            "nums": list(store.nums),
            "dens": list(store.dens),
            "counts": list(store.counts),
        }
        for region, store in st.baselines.items()
    }
    return {
        "v": VERSION,
        "service": st.service,
        "environment": st.environment,
        "watermark": st.watermark,
        "deploy": _deploy_data(st.deploy) if st.deploy is not None else None,
        "deploy_live": st.deploy_live,
        "series": series,
        "baselines": baselines,
        "check_fired": [[list(k), v] for k, v in st.check_fired.items()],
    }


def _restore_deploy(engine: Engine, st: ServiceState, data: dict[str, Any]) -> DeployState:
    d = DeployState(data["deploy_id"], st.service, st.environment, data["started_at_ms"])
    d.version, d.previous_version = data["version"], data["previous_version"]
    d.strategy, d.component = data["strategy"], data["component"]
    d.regions, d.reached = tuple(data["regions"]), list(data["reached"])
    d.status, d.completed_at_ms = data["status"], data["completed_at_ms"]
    d.event_ms, d.paused, d.escalated = dict(data["event_ms"]), data["paused"], data["escalated"]
    d.incident = list(data["incident"])
    rb = data["rollback"]
    if rb is not None:
        d.rollback = Decision(
            at_ms=rb["at_ms"],
            rule=rb["rule"],
            action="rollback",
            severity="critical",
            service=st.service,
            environment=st.environment,
            deploy=d.info(),
            regions=tuple(rb["regions"]),
            reason=rb["reason"],
            evidence=rb["evidence"],
        )
        if d.status not in ("rolled_back", "failed") and not d.escalated:
            settings = engine.rules.settings
            timeout = settings.rollback_timeout_by_strategy.get(
                d.strategy,  # type: ignore[call-overload]
                settings.rollback_timeout,
            )
            engine._push(rb["at_ms"] + timeout, "escalate", d, st)
    if d.status == "baking" and d.completed_at_ms is not None:
        bake = max((r.bake_ms or 0 for r in engine._compiled), default=0)
        engine._push(d.completed_at_ms + bake, "bake", d, st)
    return d


def restore_service(engine: Engine, data: dict[str, Any]) -> None:
    """Replace one service's state with a snapshot."""
    if data.get("v") != VERSION:
        raise ValueError(f"unsupported engine snapshot version {data.get('v')!r}")
    key = (data["service"], data["environment"])
    old = engine._services.pop(key, None)
    if old is not None:
        engine._series_count -= len(old.series)
    st = engine._service(*key)
    st.watermark = data["watermark"]
    if data["deploy"] is not None:
        st.deploy = _restore_deploy(engine, st, data["deploy"])
        engine._deploys[st.deploy.deploy_id] = (st, st.deploy)
    st.deploy_live = data["deploy_live"]
    st.check_fired = {tuple(k): v for k, v in data["check_fired"]}
    plan = engine._plan(st)
    for region, saved in data["baselines"].items():
        store = st.region_buckets(region, plan[1])
        same = store is not None and [list(m[:3]) for m in store.measures] == saved["measures"]
        sizes = (len(saved["starts"]), len(saved["dens"]))
        if store is not None and same and sizes == (store.size, len(store.dens)):
            store.starts = array("q", saved["starts"])
            store.nums = array("d", saved["nums"])
            store.dens = array("d", saved["dens"])
            store.counts = array("i", saved["counts"])
            store.reset_cursor()
    for s in data["series"]:
        series = st.series[(s["region"], s["cohort"])] = Series(s["region"], s["cohort"])
        series.last_ts = s["last_ts"]
        engine._series_count += 1
        engine._bind(st, series, plan, {}, {})
        for key_list, entries in s["aggs"]:
            agg = series.aggs.get(tuple(key_list))
            # Rings are not saved: they refill in a window.
            if isinstance(agg, SlidingAggregate) and entries:
                agg.entries = deque()
                for ts, num, den in entries:
                    agg.entries.append((ts, num, den))
                    agg.sum_num += num
                    agg.sum_den += den
                    agg.count += 1
        for b in series.bindings:
            saved = s["bindings"].get(b.rule.name)
            if saved is not None:
                b.since_ms, b.firing, b.last_fired_ms = saved

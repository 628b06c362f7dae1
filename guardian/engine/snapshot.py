"""One (service, environment)'s engine state as a versioned snapshot, and back.

The daemon writes ``Engine.snapshot(...)`` (encoded by ``encode_snapshot``)
to a compacted changelog topic keyed by service and restores it after a
restart or a partition move, so windows, baselines, the deploy and "already
rolled back" survive. A snapshot is built from the state's own types: the
deploy is the engine's ``DeployState`` struct itself, baselines are what
``BucketSet.export`` gives, windows what ``SlidingAggregate.samples`` gives.
For the plain-class state (``ServiceState``, ``Series``, ``Binding``),
``REBUILT`` names every slot that is deliberately not saved and why; a test
fails when a slot is neither saved nor listed, so a new field cannot be
forgotten silently. Rules are not part of a snapshot: bindings are rebuilt
from the rules in force and take back their progress by rule name.

Versions: 3 (written) stores the rollback as the full ``Decision``. 2 and 1,
still on the state topic of a cluster being upgraded, are read: their
rollback is rebuilt as before, and version 1's baseline denominators (one
column per measure) are cut down to the ratio measures. Anything else is
refused with ``SnapshotError``. A replica of the previous release refuses
version 3 (it logs ``snapshot_unusable`` and judges that service afresh), so
during a rolling upgrade a service moved from a new replica to an old one
loses its windows, not its safety: a repeated rollback has the same command id.

``compare`` rules' statistical tests are saved (``comparisons``: a few numbers
each, ``Comparison.save``) and taken back by rule and region when the rule in
force tests the same hypothesis, so a replica that takes a service over decides
when, and on the evidence, an uninterrupted one would; a rule whose ``compare``
parameters changed starts its test afresh. Snapshots written before tests were
saved have no ``comparisons`` (an empty list): their tests start from the next
events. The field is optional both ways (an older replica ignores it), so the
version stays 3.

Limits: samples kept for exact-duplicate detection (and to refill deploy
windows) are not saved, so a duplicate straddling a restart counts twice;
nor are the bucketed rings of long always-on windows, which refill within
their window. Deploy-only rules are bound on restore only when the deploy is
live, so the saved progress of a deploy that ended is not restored (it would
restart at the next deploy anyway; ``explain`` of that deploy lists fewer rules).
"""

from __future__ import annotations

from typing import Any

import msgspec

from guardian.engine.binding import Binder
from guardian.engine.compare import ComparisonSnapshot
from guardian.engine.decision import Decision
from guardian.engine.deploys import DeployBook
from guardian.engine.rule_index import RuleIndex
from guardian.engine.rules.compiled import AggKey
from guardian.engine.services import ServiceTable
from guardian.engine.state import Binding, DeployState, Series, ServiceState
from guardian.engine.timers import BakeEnd, Escalation, TimerQueue
from guardian.engine.window import BucketContents, SlidingAggregate
from guardian.errors import DecodeError

VERSION = 3
READABLE = (1, 2, 3)

# Slots of the plain state classes that a snapshot does not carry, and why. The others are
# saved under their own name (``aggs``: exact windows only, rings refill within their
# window; ``bindings``: each rule's progress, by rule name).
REBUILT: dict[type, dict[str, str]] = {
    ServiceState: {
        "key": "service and environment",
        "plan": "the rules in force",
        "released_ms": "deploy rules are bound on restore only if the deploy is live",
    },
    Series: {
        "buckets": "the service's baselines of the region",
        "deploy_bound": "follows deploy_live when rebound",
        "deploy_feeders": "rebound",
        "eval_at": "0: judged at the next sample",
        "feeders": "rebound",
        "recent": "duplicate detection restarts (a limit)",
        "stat_feeds": "rebound",
        "rings": "refill within their window",
        "undeployed": "rebound",
    },
    Binding: {
        "agg": "rebound",
        "baseline_cache": "recomputed from the baselines",
        "comparison": "rebound; its test is saved with the service (``comparisons``)",
        "last_baseline": "explain only: refreshed at the next evaluation",
        "last_observed": "explain only",
        "last_reason": "explain only",
        "last_samples": "explain only",
        "last_volume": "explain only",
        "next_eval_ms": "judged at the next sample",
        "nodata_fired": "one more no-data alert after a restart at most",
        "rule": "the rules in force",
        "series": "the series it is rebound on",
        "volume": "rebound",
    },
}


class SnapshotError(DecodeError):
    """A state record that cannot be restored (unknown version, or not a snapshot)."""


class Progress(msgspec.Struct, array_like=True):
    """How far one rule got on one series: ``[since_ms, firing, last_fired_ms]``."""

    since_ms: int | None
    firing: bool
    last_fired_ms: int | None


class SeriesSnapshot(msgspec.Struct):
    """One series: its exact windows' samples and each rule's progress, by rule name."""

    region: str
    cohort: str
    last_ts: int
    aggs: list[tuple[AggKey, list[tuple[int, float, float]]]]
    bindings: dict[str, Progress]


class ServiceSnapshot(msgspec.Struct):
    """Everything the engine holds for one (service, environment)."""

    v: int
    service: str
    environment: str
    watermark: int
    deploy: DeployState | None
    deploy_live: bool
    series: list[SeriesSnapshot]
    baselines: dict[str, BucketContents]
    check_fired: list[tuple[tuple[str, str, str, str], int]]
    # Absent from snapshots written before the guardian remembered versions.
    live_version: str | None = None
    prior_version: str | None = None
    # Absent from snapshots written before ``compare`` tests were saved: they start afresh.
    comparisons: list[ComparisonSnapshot] = msgspec.field(default_factory=list)

    def without_windows(self) -> ServiceSnapshot:
        """The same snapshot without its series (for a record that would be too large)."""
        return msgspec.structs.replace(self, series=[])


# ---------------------------------------------------------------- versions 1 and 2
class _LegacyRollback(msgspec.Struct):
    at_ms: int
    rule: str
    regions: list[str]
    reason: str
    evidence: dict[str, Any]


class _LegacyDeploy(msgspec.Struct):
    deploy_id: str
    started_at_ms: int
    version: str
    previous_version: str | None
    strategy: str
    component: str
    regions: list[str]
    reached: list[str]
    status: str
    completed_at_ms: int | None
    event_ms: dict[str, int]
    paused: bool
    escalated: bool
    incident: list[dict[str, Any]]
    rollback: _LegacyRollback | None


class _LegacySnapshot(msgspec.Struct):
    v: int
    service: str
    environment: str
    watermark: int
    deploy: _LegacyDeploy | None
    deploy_live: bool
    series: list[SeriesSnapshot]
    baselines: dict[str, BucketContents]
    check_fired: list[tuple[tuple[str, str, str, str], int]]


class _Versioned(msgspec.Struct):
    v: int | None = None


def _upgrade_deploy(old: _LegacyDeploy, service: str, environment: str) -> DeployState:
    fields = msgspec.structs.asdict(old)
    rollback = fields.pop("rollback")
    deploy = msgspec.convert(
        {**fields, "service": service, "environment": environment}, DeployState
    )
    if rollback is not None:
        deploy.rollback = Decision(
            at_ms=rollback.at_ms,
            rule=rollback.rule,
            action="rollback",
            severity="critical",
            service=service,
            environment=environment,
            deploy=deploy.info(),
            regions=tuple(rollback.regions),
            reason=rollback.reason,
            evidence=rollback.evidence,
        )
    return deploy


def _ratio_denominators(buckets: BucketContents) -> BucketContents:
    """Version 1 kept a denominator column for every measure; keep the ratio measures' only."""
    width, size = len(buckets.measures), len(buckets.starts)
    if len(buckets.dens) != width * size:
        return buckets
    ratios = [i for i, m in enumerate(buckets.measures) if m[1] is not None]
    dens = [buckets.dens[slot * width + i] for slot in range(size) for i in ratios]
    return msgspec.structs.replace(buckets, dens=dens)


def _upgrade(old: _LegacySnapshot) -> ServiceSnapshot:
    baselines = old.baselines
    if old.v == 1:
        baselines = {region: _ratio_denominators(b) for region, b in baselines.items()}
    deploy = old.deploy
    return ServiceSnapshot(
        v=VERSION,
        service=old.service,
        environment=old.environment,
        watermark=old.watermark,
        deploy=_upgrade_deploy(deploy, old.service, old.environment) if deploy else None,
        deploy_live=old.deploy_live,
        series=old.series,
        baselines=baselines,
        check_fired=old.check_fired,
    )


# ---------------------------------------------------------------- bytes
def _plain(obj: object) -> object:
    if isinstance(obj, int):  # EventTime and other int subclasses
        return int(obj)
    raise TypeError(f"cannot save {type(obj).__name__} in a snapshot")


_encoder = msgspec.json.Encoder(enc_hook=_plain)


def encode_snapshot(snapshot: ServiceSnapshot) -> bytes:
    """A snapshot as the JSON bytes written to the state topic."""
    return _encoder.encode(snapshot)


def decode_snapshot(data: bytes) -> ServiceSnapshot:
    """A snapshot of any readable version, as the current version; ``SnapshotError`` if not."""
    try:
        version = msgspec.json.decode(data, type=_Versioned).v
        if version not in READABLE:
            raise SnapshotError(
                f"unsupported engine snapshot version {version!r} "
                f"(this guardian reads {', '.join(map(str, READABLE))})"
            )
        if version == VERSION:
            return msgspec.json.decode(data, type=ServiceSnapshot)
        return _upgrade(msgspec.json.decode(data, type=_LegacySnapshot))
    except msgspec.MsgspecError as exc:
        raise SnapshotError(f"not an engine snapshot: {exc}") from exc


# ---------------------------------------------------------------- state ↔ snapshot
def capture(st: ServiceState) -> ServiceSnapshot:
    """Everything the engine holds for one service (sharing its deploy: encode it right away)."""
    series = [
        SeriesSnapshot(
            region=s.region,
            cohort=s.cohort,
            last_ts=s.last_ts,
            aggs=[(k, a.samples()) for k, a in s.aggs.items() if isinstance(a, SlidingAggregate)],
            bindings={
                b.rule.name: Progress(b.since_ms, b.firing, b.last_fired_ms) for b in s.bindings
            },
        )
        for s in st.series.values()
    ]
    return ServiceSnapshot(
        v=VERSION,
        service=st.service,
        environment=st.environment,
        watermark=st.watermark,
        deploy=st.deploy,
        deploy_live=st.deploy_live,
        series=series,
        baselines={region: store.export() for region, store in st.baselines.items()},
        check_fired=list(st.check_fired.items()),
        live_version=st.live_version,
        prior_version=st.prior_version,
        comparisons=[c.save(region) for (_, region), c in st.comparisons.items()],
    )


def restore(
    snapshot: ServiceSnapshot,
    *,
    services: ServiceTable,
    deploys: DeployBook,
    timers: TimerQueue,
    rules: RuleIndex,
    binder: Binder,
) -> None:
    """Replace one service's state (whatever hangs off it goes first) with a snapshot's."""
    key = (snapshot.service, snapshot.environment)
    services.forget([key])
    st = services.service(*key)
    st.watermark = snapshot.watermark
    deploy = snapshot.deploy
    if deploy is not None:
        # A deep copy: a snapshot shares its deploy with the engine it was taken from.
        deploy = msgspec.json.decode(_encoder.encode(deploy), type=DeployState)
        st.deploy = deploy
        deploys.open(deploy, replaces=None)
        if deploy.rollback is not None and not deploy.closed and not deploy.escalated:
            timers.push(rules.escalation_due(deploy), Escalation(st, deploy))
        if deploy.status == "baking" and deploy.completed_at_ms is not None:
            timers.push(deploy.completed_at_ms + rules.bake_ms, BakeEnd(st, deploy))
    st.deploy_live = snapshot.deploy_live
    st.check_fired = {tuple(k): v for k, v in snapshot.check_fired}  # type: ignore[misc]
    st.live_version, st.prior_version = snapshot.live_version, snapshot.prior_version
    for region, contents in snapshot.baselines.items():
        store = st.region_buckets(region)
        if store is not None:
            store.load(contents)
    for saved in snapshot.series:
        series = services.new_series(st, saved.region, saved.cohort, force=True)
        assert series is not None  # noqa: S101 - forced in
        series.last_ts = saved.last_ts
        binder.bind(st, series)
        for agg_key, samples in saved.aggs:
            agg = series.aggs.get(agg_key)
            if isinstance(agg, SlidingAggregate) and samples:
                agg.load(samples)
        for b in series.bindings:
            progress = saved.bindings.get(b.rule.name)
            if progress is not None:
                b.since_ms, b.firing, b.last_fired_ms = (
                    progress.since_ms,
                    progress.firing,
                    progress.last_fired_ms,
                )
    for saved_test in snapshot.comparisons:
        comparison = st.comparisons.get((saved_test.rule, saved_test.region))
        if comparison is not None:
            comparison.load(saved_test)

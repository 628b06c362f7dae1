"""Per-(service, environment) state: deploy lifecycle, series, windows, rule progress.

Everything the engine knows about one service in one environment lives in one
``ServiceState`` so it can be snapshotted to and restored from a changelog as
a unit. ``Series`` holds the windows of one (region, cohort) — exact sliding
aggregates, and one bucketed ring per window length for the always-on rules —
the samples of the lateness horizon (packed, to recognise duplicates and to
refill deploy windows) and a ``Binding`` per rule that watches it (how long its
condition has held, whether it is firing, what it last saw, for ``explain``).
Deploy-scoped windows are fed only while a deploy is live and emptied after.

Limits: plain mutable classes with ``__slots__`` for hot-path speed; only the
engine mutates them.
"""

from __future__ import annotations

from typing import Any

from guardian.engine.decision import Decision, DeployInfo, DeployStatus
from guardian.engine.ring import RingSet
from guardian.engine.rules.compiled import AggKey, CompiledRule, MeasureKey
from guardian.engine.window import BucketSet, SlidingAggregate, Window

# Why a rule did not fire at its last evaluation; formatted by explain().
NOT_EVALUATED = "not evaluated yet"


class Binding:
    """One rule watching one series."""

    __slots__ = (
        "agg",
        "baseline_cache",
        "firing",
        "last_baseline",
        "last_fired_ms",
        "last_observed",
        "last_reason",
        "last_samples",
        "last_volume",
        "next_eval_ms",
        "nodata_fired",
        "rule",
        "series",
        "since_ms",
        "volume",
    )

    def __init__(
        self,
        rule: CompiledRule,
        series: Series,
        agg: Window,
        volume: Window | None,
    ) -> None:
        self.rule = rule
        self.series = series
        self.agg = agg
        self.volume = volume
        self.since_ms: int | None = None
        self.next_eval_ms = 0
        self.firing = False
        self.last_fired_ms: int | None = None
        self.last_observed: float | None = None
        self.last_baseline: float | None = None
        self.last_samples = 0
        self.last_volume: float | None = None
        self.last_reason = NOT_EVALUATED
        self.baseline_cache: tuple[str, float | None, int] | None = None
        self.nodata_fired: int | None = None  # last sample time when no-data last fired

    def reset(self) -> None:
        """Forget progress (a new deploy starts from a clean slate)."""
        self.since_ms = None
        self.firing = False
        self.last_fired_ms = None
        self.baseline_cache = None
        self.nodata_fired = None
        self.last_reason = NOT_EVALUATED


class Series:
    """One (service, environment, region, cohort) and the windows rules read from it."""

    __slots__ = (
        "aggs",
        "bindings",
        "buckets",
        "cohort",
        "deploy_feeders",
        "eval_at",
        "feeders",
        "last_ts",
        "recent",
        "region",
        "rings",
        "schema",
        "undeployed",
    )

    def __init__(self, region: str, cohort: str) -> None:
        self.region = region
        self.cohort = cohort
        self.aggs: dict[AggKey, Window] = {}
        # Unclipped aggregates are fed always; clipped ones only while a deploy applies.
        self.feeders: list[SlidingAggregate | RingSet] = []
        self.deploy_feeders: list[SlidingAggregate] = []
        # Unclipped ring windows, one ring per window length holding every measure.
        self.rings: dict[int, RingSet] = {}
        # Without a live deploy no binding is due before this event time (0: evaluate).
        self.eval_at = 0
        self.bindings: list[Binding] = []
        self.undeployed: list[Binding] = []  # bindings judged without a live deploy
        self.buckets: BucketSet | None = None
        self.last_ts = -1
        # Samples within the lateness horizon, to recognise exact duplicates and to refill
        # deploy windows: flat [ts, values, ts, values, ...] in time order, where values are
        # packed as a tuple in ``schema`` key order when the keys match (most samples).
        self.recent: list[Any] = []
        self.schema: tuple[str, ...] = ()

    def aggregate(self, key: AggKey, ring: bool = False) -> Window:
        """The window for ``key``, created (and fed from now on) if new; a ring if allowed."""
        agg = self.aggs.get(key)
        if agg is None:
            if ring:
                rs = self.rings.get(key[3])
                if rs is None:
                    rs = self.rings[key[3]] = RingSet(key[3])
                    self.feeders.append(rs)
                agg = self.aggs[key] = rs.column(key[:3])
            else:
                agg = self.aggs[key] = SlidingAggregate(key[0], key[1], key[2], key[3])
                (self.deploy_feeders if key[4] else self.feeders).append(agg)
        return agg

    def rebind(self) -> dict[AggKey, Window]:
        """Before a hot reload: unbind everything, keep the rings; return the old windows."""
        kept = self.aggs
        self.aggs = {k: a for k, a in kept.items() if not isinstance(a, SlidingAggregate)}
        self.bindings = []
        self.undeployed = []
        self.feeders = list(self.rings.values())
        self.deploy_feeders = []
        return kept

    def adopt(self, key: AggKey, agg: Window) -> None:
        """Keep an exact window across a hot reload."""
        if key not in self.aggs and isinstance(agg, SlidingAggregate):
            self.aggs[key] = agg
            (self.deploy_feeders if key[4] else self.feeders).append(agg)

    def prune_rings(self) -> None:
        """After a hot reload: drop ring measures no binding reads any more."""
        used = {b.rule.agg_key for b in self.bindings} | {b.rule.volume_key for b in self.bindings}
        for key in [k for k, a in self.aggs.items() if not isinstance(a, SlidingAggregate)]:
            if key not in used:
                del self.aggs[key]
        live = {id(a) for a in self.aggs.values()}
        for length, ring in list(self.rings.items()):
            ring.keep([c for c in ring.columns if id(c) in live])
            if not ring.columns:
                del self.rings[length]
                self.feeders.remove(ring)

    def release(self) -> None:
        """No deploy is live any more: drop the deploy windows' samples (refilled at the next)."""
        for agg in self.deploy_feeders:
            agg.clear()

    def backfill(self, start_ms: int, now: int) -> None:
        """A deploy started: refill clipped windows from recent samples at or after its start."""
        for agg in self.deploy_feeders:
            agg.clear()
        recent = self.recent
        for i in range(0, len(recent), 2):
            ts = recent[i]
            if ts >= start_ms:
                values = self._unpack(recent[i + 1])
                for agg in self.deploy_feeders:
                    agg.feed(ts, values, now)

    def _unpack(self, packed: tuple[float, ...] | dict[str, float]) -> dict[str, float]:
        if type(packed) is tuple:
            return dict(zip(self.schema, packed, strict=True))
        return packed  # type: ignore[return-value]

    def remember(self, ts: int, values: dict[str, float], horizon: int) -> bool:
        """Keep a sample for the lateness horizon; False if it is an exact duplicate."""
        recent = self.recent
        if not recent:
            self.schema = tuple(values)
        keys = tuple(values)
        packed: Any = tuple(values.values()) if keys == self.schema else values
        if ts > self.last_ts:
            self.last_ts = ts
            recent.append(ts)
            recent.append(packed)
        else:
            end = len(recent)
            while end and recent[end - 2] > ts:
                end -= 2
            i = end
            while i and recent[i - 2] == ts:
                if self._unpack(recent[i - 1]) == values:
                    return False
                i -= 2
            recent[end:end] = (ts, packed)
        if recent[0] < horizon:
            i = 2
            while i < len(recent) and recent[i] < horizon:
                i += 2
            del recent[:i]
        return True


class DeployState:
    """What the engine tracks of one deploy, mutable as its events arrive."""

    __slots__ = (
        "completed_at_ms",
        "component",
        "deploy_id",
        "environment",
        "escalated",
        "event_ms",
        "incident",
        "paused",
        "previous_version",
        "reached",
        "regions",
        "rollback",
        "service",
        "started_at_ms",
        "status",
        "strategy",
        "version",
    )

    def __init__(self, deploy_id: str, service: str, environment: str, started_at_ms: int) -> None:
        self.deploy_id = deploy_id
        self.service = service
        self.environment = environment
        self.started_at_ms = started_at_ms
        self.version = ""
        self.previous_version: str | None = None
        self.strategy = "rolling"
        self.component = "application"
        self.regions: tuple[str, ...] = ()
        self.reached: list[str] = []
        self.status: DeployStatus = "active"
        self.completed_at_ms: int | None = None
        self.event_ms: dict[str, int] = {}
        self.rollback: Decision | None = None
        self.paused = False
        self.escalated = False
        self.incident: list[dict[str, Any]] = []

    def info(self) -> DeployInfo:
        """An immutable snapshot for decisions."""
        return DeployInfo(
            deploy_id=self.deploy_id,
            service=self.service,
            environment=self.environment,
            version=self.version,
            previous_version=self.previous_version,
            strategy=self.strategy,
            component=self.component,
            regions=tuple(self.reached) if self.strategy == "progressive" else self.regions,
            started_at_ms=self.started_at_ms,
            status=self.status,
            completed_at_ms=self.completed_at_ms,
        )

    def applies(self, now: int, bake_ms: int | None) -> bool:
        """Whether deploy-scoped rules with this bake time still watch the deploy at ``now``."""
        if self.status == "active":
            return True
        if self.status in ("baking", "completed") and self.completed_at_ms is not None:
            return now < self.completed_at_ms + (bake_ms or 0)
        return False


class ServiceState:
    """All state of one (service, environment)."""

    __slots__ = (
        "baselines",
        "check_fired",
        "deploy",
        "deploy_live",
        "environment",
        "series",
        "service",
        "watermark",
    )

    def __init__(self, service: str, environment: str) -> None:
        self.service = service
        self.environment = environment
        self.watermark = -1
        self.series: dict[tuple[str, str], Series] = {}
        # region → 30 s buckets of every pre-deploy baseline measure (any cohort).
        self.baselines: dict[str, BucketSet] = {}
        self.deploy: DeployState | None = None
        self.deploy_live = False  # a deploy is active or baking: feed clipped windows
        self.check_fired: dict[tuple[str, str, str, str], int] = {}

    def release(self) -> None:
        """The deploy stopped being live: deploy windows are not fed or read until the next."""
        self.deploy_live = False
        for series in self.series.values():
            series.release()

    def region_buckets(self, region: str, measures: dict[MeasureKey, int]) -> BucketSet | None:
        """The baseline buckets fed by every series of ``region`` (None if no rule needs any)."""
        if not measures:
            return None
        store = self.baselines.get(region)
        if store is None or [m[:3] for m in store.measures] != list(measures):
            store = BucketSet(list(measures), max(measures.values()))
            self.baselines[region] = store
        return store

"""Per-(service, environment) state: deploy lifecycle, series, windows, rule progress.

Everything the engine knows about one service in one environment lives in one
``ServiceState`` so it can be snapshotted to and restored from a changelog as
a unit. ``Series`` holds the windows of one (region, cohort) — exact sliding
aggregates, and one bucketed ring per window length for the always-on rules —
the samples of the lateness horizon (in flat arrays, to recognise duplicates
and to refill deploy windows) and a ``Binding`` per rule that watches it (how
long its condition has held, whether it is firing, what it last saw, for
``explain``). Deploy-only rules and their windows exist only while the
service has a live deploy (``binding.py``); deploy-scoped windows are fed only
then and emptied after. Memory per series is what ``benchmarks/memory.py``
measures and the series cap (``memory_budget_mb``) is derived from.

``DeployState`` is a msgspec ``Struct``: snapshots encode it as it is, so a
field added to it is saved and restored without further work. The others are
plain classes with ``__slots__`` for hot-path speed; ``snapshot.py`` lists,
for each of their slots, whether it is saved or rebuilt (a test checks that
every slot is in one list or the other).

Limits: the owners (``services.ServiceTable`` for services and series, the
binder for bindings, the firing policy for rule progress) mutate them; the
other modules read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from guardian.engine.compare import Comparison, Feed
from guardian.engine.decision import Decision, DeployInfo, DeployStatus
from guardian.engine.ring import RingSet
from guardian.engine.rules.compiled import AggKey, CompiledRule, MeasureKey
from guardian.engine.samples import RecentSamples
from guardian.engine.window import BucketSet, SlidingAggregate, Window

ServiceKey = tuple[str, str]  # (service, environment)
SeriesKey = tuple[str, str]  # (region, cohort)

# Why a rule did not fire at its last evaluation; formatted by explain().
NOT_EVALUATED = "not evaluated yet"


class Binding:
    """One rule watching one series."""

    __slots__ = (
        "agg",
        "baseline_cache",
        "comparison",
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
        self.comparison: Comparison | None = None  # ``compare`` rules: the test it reads

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
        "deploy_bound",
        "deploy_feeders",
        "eval_at",
        "feeders",
        "last_ts",
        "recent",
        "region",
        "rings",
        "stat_feeds",
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
        # Whether the rules that judge only a live deploy are bound (``Binder.attach``):
        # a series of a service with no live deploy carries neither their progress nor
        # their windows.
        self.deploy_bound = False
        self.bindings: list[Binding] = []
        self.undeployed: list[Binding] = []  # bindings judged without a live deploy
        self.buckets: BucketSet | None = None
        self.last_ts = -1
        # Samples within the lateness horizon: exact duplicates, and deploy windows' refill.
        self.recent = RecentSamples()
        # ``compare`` tests this series feeds (as canary or as stable), per event of a deploy.
        self.stat_feeds: list[Feed] = []

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
        self.stat_feeds = []
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
        self.clear_deploy_windows()

    def backfill(self, start_ms: int, now: int) -> None:
        """A deploy's start moved earlier: refill clipped windows from samples since then."""
        self.clear_deploy_windows()
        for ts, values in self.since(start_ms):
            for agg in self.deploy_feeders:
                agg.feed(ts, values, now)

    def since(self, start_ms: int) -> list[tuple[int, dict[str, float]]]:
        """The remembered samples at or after ``start_ms``, in time order."""
        return self.recent.since(start_ms)

    def clear_deploy_windows(self) -> None:
        """Empty the deploy windows (before they are refilled)."""
        for agg in self.deploy_feeders:
            agg.clear()

    def remember(self, ts: int, values: dict[str, float], horizon: int) -> bool:
        """Keep a sample for the lateness horizon; False if it is an exact duplicate."""
        newest = ts > self.last_ts
        if not self.recent.add(ts, values, horizon, newest=newest):
            return False
        if newest:
            self.last_ts = ts
        return True


class DeployState(msgspec.Struct):
    """What the engine tracks of one deploy, mutable as its events arrive; saved as it is."""

    deploy_id: str
    service: str
    environment: str
    started_at_ms: int
    version: str = ""
    previous_version: str | None = None
    strategy: str = "rolling"
    component: str = "application"
    regions: tuple[str, ...] = ()
    reached: list[str] = msgspec.field(default_factory=list)
    status: DeployStatus = "active"
    completed_at_ms: int | None = None
    event_ms: dict[str, int] = msgspec.field(default_factory=dict)
    rollback: Decision | None = None
    paused: bool = False
    escalated: bool = False
    incident: list[dict[str, Any]] = msgspec.field(default_factory=list)

    @property
    def key(self) -> ServiceKey:
        """The (service, environment) this deploy belongs to."""
        return (self.service, self.environment)

    @property
    def closed(self) -> bool:
        """Whether an executor confirmed (or gave up on) a rollback of it."""
        return self.status in ("rolled_back", "failed")

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
            rollback_rule=self.rollback.rule if self.rollback is not None else None,
        )

    def applies(self, now: int, bake_ms: int | None) -> bool:
        """Whether deploy-scoped rules with this bake time still watch the deploy at ``now``."""
        if self.status == "active":
            return True
        if self.status in ("baking", "completed") and self.completed_at_ms is not None:
            return now < self.completed_at_ms + (bake_ms or 0)
        return False


@dataclass(frozen=True, slots=True)
class Plan:
    """The metric rules that watch one service, and the pre-deploy measures they need."""

    rules: tuple[CompiledRule, ...]
    # measure → how long its baseline buckets must reach back (ms)
    measures: dict[MeasureKey, int]


NO_PLAN = Plan((), {})


class ServiceState:
    """All state of one (service, environment)."""

    __slots__ = (
        "baselines",
        "check_fired",
        "comparisons",
        "deploy",
        "deploy_live",
        "environment",
        "key",
        "live_version",
        "plan",
        "prior_version",
        "released_ms",
        "series",
        "service",
        "watermark",
    )

    def __init__(self, service: str, environment: str, plan: Plan = NO_PLAN) -> None:
        self.service = service
        self.environment = environment
        self.key: ServiceKey = (service, environment)
        self.plan = plan  # the rules in force for it; replaced on a hot reload
        self.watermark = -1
        # Added and removed only by ``services.ServiceTable``, which counts them.
        self.series: dict[SeriesKey, Series] = {}
        # region → 30 s buckets of every pre-deploy baseline measure (any cohort).
        self.baselines: dict[str, BucketSet] = {}
        self.deploy: DeployState | None = None
        self.deploy_live = False  # a deploy is active or baking: feed clipped windows
        self.released_ms = -1  # event time the last live deploy stopped being live
        self.check_fired: dict[tuple[str, str, str, str], int] = {}
        # (rule, region) → the ``compare`` test both cohorts' series of the region feed.
        self.comparisons: dict[tuple[str, str], Comparison] = {}
        # The last two versions seen running (metrics, deploys, rollbacks), newest first:
        # what a deploy that does not name its previous version replaces.
        self.live_version: str | None = None
        self.prior_version: str | None = None

    def saw_version(self, version: str) -> None:
        """``version`` ran; a live deploy that did not know what it replaced learns it here."""
        if version != self.live_version:
            self.prior_version, self.live_version = self.live_version, version
        deploy = self.deploy
        if (
            self.deploy_live
            and deploy is not None
            and deploy.previous_version is None
            and version != deploy.version
        ):
            deploy.previous_version = version

    def version_before(self, version: str) -> str | None:
        """The version last seen running other than ``version``: what a deploy of it replaces."""
        return self.live_version if self.live_version != version else self.prior_version

    def release(self) -> None:
        """The deploy stopped being live: deploy windows are not fed or read until the next."""
        self.deploy_live = False
        self.released_ms = self.watermark
        for series in self.series.values():
            series.release()

    def region_buckets(self, region: str) -> BucketSet | None:
        """The baseline buckets fed by every series of ``region`` (None if no rule needs any)."""
        measures = self.plan.measures
        if not measures:
            return None
        store = self.baselines.get(region)
        if store is None or [m[:3] for m in store.measures] != list(measures):
            store = BucketSet(list(measures), max(measures.values()))
            self.baselines[region] = store
        return store

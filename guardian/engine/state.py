"""Per-(service, environment) state: deploy lifecycle, series, windows, rule progress.

Everything the engine knows about one service in one environment lives in one
``ServiceState`` so it can be snapshotted to and restored from a changelog as
a unit. ``Series`` holds the sliding aggregates of one (region, cohort) and a
``Binding`` per rule that watches it (how long its condition has held, whether
it is firing, what it last saw, for ``explain``).

Limits: plain mutable classes with ``__slots__`` for hot-path speed; only the
engine mutates them.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from guardian.engine.decision import Decision, DeployInfo, DeployStatus
from guardian.engine.rules.compiled import AggKey, CompiledRule, MeasureKey
from guardian.engine.window import BucketSet, SlidingAggregate

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
        agg: SlidingAggregate,
        volume: SlidingAggregate | None,
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
        "feeders",
        "last_ts",
        "recent",
        "region",
    )

    def __init__(self, region: str, cohort: str) -> None:
        self.region = region
        self.cohort = cohort
        self.aggs: dict[AggKey, SlidingAggregate] = {}
        # Unclipped aggregates are fed always; clipped ones only while a deploy applies.
        self.feeders: list[SlidingAggregate] = []
        self.deploy_feeders: list[SlidingAggregate] = []
        self.bindings: list[Binding] = []
        self.buckets: BucketSet | None = None
        self.last_ts = -1
        # (ts, values) within the lateness horizon, to recognise exact duplicates.
        self.recent: deque[tuple[int, dict[str, float]]] = deque()

    def aggregate(self, key: AggKey) -> SlidingAggregate:
        """The sliding aggregate for ``key``, created (and fed from now on) if new."""
        agg = self.aggs.get(key)
        if agg is None:
            agg = SlidingAggregate(key[0], key[1], key[2], key[3])
            self.aggs[key] = agg
            (self.deploy_feeders if key[4] else self.feeders).append(agg)
        return agg

    def backfill(self, start_ms: int, now: int) -> None:
        """A deploy started: refill clipped windows from recent samples at or after its start."""
        for agg in self.deploy_feeders:
            agg.clear()
        for ts, values in self.recent:
            if ts >= start_ms:
                for agg in self.deploy_feeders:
                    agg.feed(ts, values, now)

    def is_duplicate(self, ts: int, values: dict[str, float]) -> bool:
        """Whether an identical sample at the same time was already counted."""
        for seen_ts, seen in reversed(self.recent):
            if seen_ts < ts:
                return False
            if seen_ts == ts and seen == values:
                return True
        return False


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

    def region_buckets(self, region: str, measures: dict[MeasureKey, int]) -> BucketSet | None:
        """The baseline buckets fed by every series of ``region`` (None if no rule needs any)."""
        if not measures:
            return None
        store = self.baselines.get(region)
        if store is None or [m[:3] for m in store.measures] != list(measures):
            store = BucketSet(list(measures), max(measures.values()))
            self.baselines[region] = store
        return store

"""The engine: events and event time in, decisions out.

``Engine.process`` takes one decoded event and returns the decisions it
causes; ``Engine.advance`` lets event time pass (rollback timeouts, bake
ends, no-data alerts, forgetting idle services) and is cheap and idempotent
because it only pops due timers from a heap (and sweeps for idle services
once a minute of event time). The engine reads no clock: "now" is the watermark of the
event's (service, environment), i.e. the newest event time seen for it.

Here: late events (older than watermark - lateness) and exact duplicates
are counted and ignored; the number of series is capped; windows are fed.
The firing policy — the ``for`` clock and cooldown per rule and series, one
rollback and one pause per deploy (later firings join the deploy's incident,
visible in ``explain``), escalation when a rollback is not confirmed in
time — is in ``firing.py``; deploy lifecycle and timers in ``lifecycle.py``.

Limits: a rule is evaluated when its own series receives a sample (or, for
no-data, by ``advance``); a series that falls silent mid-``for`` is not
re-evaluated until its next sample. Deploy rules are judged on every sample;
rules that do not guard a deploy (alerts) at most every window/10 of event
time, like a Prometheus evaluation interval, to keep the hot path cheap; a
series without a live deploy skips evaluation entirely until its next rule is
due (``Series.eval_at``).
Deploy events are never dropped as late (a ``started`` older than the current
deploy is ignored as stale).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from guardian.engine import lifecycle
from guardian.engine.binding import bind_series
from guardian.engine.decision import Decision, DeployInfo
from guardian.engine.explain import explain_deploy
from guardian.engine.firing import evaluate_bindings
from guardian.engine.ownership import expire_idle
from guardian.engine.rules.compiled import AggKey, CompiledRule, MeasureKey, compile_rules
from guardian.engine.rules.loader import RuleSet
from guardian.engine.snapshot import restore_service, snapshot_service
from guardian.engine.state import Binding, DeployState, Series, ServiceState
from guardian.engine.window import BUCKET_MS, RING_AGGREGATES
from guardian.wire.events import CheckEvent, DeployEvent, InputEvent, MetricEvent

_NONE: list[Decision] = []
_SWEEP_EVERY_MS = 60_000  # event time between idle-service sweeps


@dataclass(frozen=True, slots=True)
class EngineStats:
    """Counters the daemon exports as metrics."""

    tracked_series: int
    late_events: int
    duplicate_events: int
    series_cap_rejections: int
    active_deploys: int
    expired_services: int


class Engine:
    """Pure rule evaluation over event time; one instance per partition set."""

    def __init__(
        self,
        rules: RuleSet,
        *,
        max_series: int = 100_000,
        allowed_lateness_ms: int = 60_000,
        idle_ttl_ms: int | None = None,
    ) -> None:
        self._max_series = max_series
        self._lateness = allowed_lateness_ms
        # Services silent this long (event time) without a live deploy are forgotten.
        self._idle_ttl_ms = idle_ttl_ms
        self._next_sweep_ms = 0
        self._expired = 0
        self._services: dict[tuple[str, str], ServiceState] = {}
        self._plans: dict[tuple[str, str], tuple[list[CompiledRule], dict[MeasureKey, int]]] = {}
        self._deploys: dict[str, tuple[ServiceState, DeployState]] = {}
        self._timers: list[tuple[int, int, str, Any, Any]] = []
        self._seq = 0
        self._series_count = 0
        self._late = 0
        self._duplicates = 0
        self._rejected = 0
        # Rules disabled after raising during evaluation, with the error; a reload clears it.
        self.rule_errors: dict[str, str] = {}
        self._install(rules)

    # ------------------------------------------------------------------ rules
    def _install(self, rules: RuleSet) -> None:
        self.rules = rules
        self.rule_errors = {}
        self._compiled = compile_rules(rules)
        self._metric_rules = [r for r in self._compiled if r.agg_key is not None]
        self._check_rules = [r for r in self._compiled if r.spec.check is not None]
        self._exact_keys = {
            r.agg_key for r in self._metric_rules if r.aggregate not in RING_AGGREGATES
        }
        self._plans.clear()

    def _plan(self, st: ServiceState) -> tuple[list[CompiledRule], dict[MeasureKey, int]]:
        key = (st.service, st.environment)
        plan = self._plans.get(key)
        if plan is None:
            rules = [
                r
                for r in self._metric_rules
                if r.service(st.service) and r.environment(st.environment)
            ]
            measures: dict[MeasureKey, int] = {}
            for r in rules:
                if r.baseline is not None and r.baseline.baseline == "pre_deploy" and r.measure:
                    keep = r.baseline.baseline_window + self._lateness + 2 * BUCKET_MS
                    measures[r.measure] = max(keep, measures.get(r.measure, 0))
            plan = self._plans[key] = (rules, measures)
        return plan

    def _ring(self, key: AggKey | None) -> bool:
        """Whether a bucketed ring can serve this window (long, unclipped, sums only)."""
        return key is not None and not key[4] and key[3] >= 60_000 and key not in self._exact_keys

    def swap_rules(self, rules: RuleSet) -> None:
        """Hot reload: new rules take over; windows, deploys and matching progress are kept."""
        self._install(rules)
        for st in self._services.values():
            plan = self._plan(st)
            for series in st.series.values():
                old = {b.rule.name: b for b in series.bindings}
                kept = series.rebind()
                self._bind(st, series, plan, kept, old)
                series.prune_rings()

    def _bind(
        self,
        st: ServiceState,
        series: Series,
        plan: tuple[list[CompiledRule], dict[MeasureKey, int]],
        kept: dict[Any, Any],
        old: dict[str, Binding],
    ) -> None:
        bind_series(self, st, series, plan, kept, old)
        series.undeployed = [b for b in series.bindings if not b.rule.clipped]
        series.eval_at = 0

    # ------------------------------------------------------------------ events
    def process(self, event: InputEvent) -> list[Decision]:
        """Apply one event; return the decisions it causes (usually none)."""
        if type(event) is MetricEvent:
            return self._on_metric(event)
        if type(event) is DeployEvent:
            return self._on_deploy(event)
        if type(event) is CheckEvent:
            return self._on_check(event)
        raise TypeError(f"not an input event: {type(event).__name__}")

    def _service(self, service: str, environment: str) -> ServiceState:
        key = (service, environment)
        st = self._services.get(key)
        if st is None:
            st = self._services[key] = ServiceState(service, environment)
        return st

    def _admit(self, ev: MetricEvent) -> ServiceState | None:
        """State for a service seen for the first time, unless the series cap is reached."""
        if self._series_count >= self._max_series:
            # At the cap a flood of new names must not grow memory: no state for them.
            self._rejected += 1
            return None
        return self._service(ev.service, ev.environment)

    def _new_series(self, st: ServiceState, region: str, cohort: str) -> Series | None:
        """A new series, unless the cap is reached (a live deploy's series always gets in)."""
        # A flood of junk series must never cost a real deploy its rollback.
        if self._series_count >= self._max_series and not st.deploy_live:
            self._rejected += 1
            return None
        self._series_count += 1
        series = st.series[(region, cohort)] = Series(region, cohort)
        self._bind(st, series, self._plan(st), {}, {})
        return series

    def _on_metric(self, ev: MetricEvent) -> list[Decision]:
        st = self._services.get((ev.service, ev.environment)) or self._admit(ev)
        if st is None:
            return _NONE
        ts: int = ev.timestamp
        if ts > st.watermark:
            st.watermark = ts
        elif ts < st.watermark - self._lateness:
            self._late += 1
            return _NONE
        region = ev.region or ""
        cohort = ev.cohort or ""
        series = st.series.get((region, cohort)) or self._new_series(st, region, cohort)
        if series is None:
            return _NONE
        values = ev.values
        now = st.watermark
        if not series.remember(ts, values, now - self._lateness):
            self._duplicates += 1
            return _NONE
        for agg in series.feeders:
            agg.feed(ts, values, now)
        if series.buckets is not None:
            series.buckets.feed(ts, values)
        if st.deploy_live:
            for sliding in series.deploy_feeders:
                sliding.feed(ts, values, now)
        elif now < series.eval_at:
            return _NONE  # no deploy and no always-on rule due: nothing to judge
        return self._evaluate_series(st, series)

    def _evaluate_series(self, st: ServiceState, series: Series) -> list[Decision]:
        if not series.bindings:
            return _NONE
        now = st.watermark
        deploy = st.deploy if st.deploy_live else None
        if deploy is None:
            out = evaluate_bindings(self, st, series, None, now)
            due = [b.next_eval_ms if b.rule.eval_every_ms else 0 for b in series.undeployed]
            series.eval_at = min(due, default=1 << 62)
            return out
        return evaluate_bindings(self, st, series, deploy, now)

    def _on_deploy(self, ev: DeployEvent) -> list[Decision]:
        return lifecycle.on_deploy(self, ev)

    def _on_check(self, ev: CheckEvent) -> list[Decision]:
        return lifecycle.on_check(self, ev)

    # ------------------------------------------------------------------ time
    def _push(self, due: int, kind: str, a: Any, b: Any) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, kind, a, b))

    def advance(self, now_ms: int) -> list[Decision]:
        """Let event time reach ``now_ms``: escalations, bake ends, no-data alerts, expiry."""
        if self._idle_ttl_ms is not None and now_ms >= self._next_sweep_ms:
            self._next_sweep_ms = now_ms + _SWEEP_EVERY_MS
            self._expired += expire_idle(self, now_ms - self._idle_ttl_ms)
        timers = self._timers
        if not timers or timers[0][0] > now_ms:
            return _NONE
        return lifecycle.advance(self, now_ms)

    # ------------------------------------------------------------------ queries
    @property
    def stats(self) -> EngineStats:
        """Current counters."""
        active = sum(
            1
            for st in self._services.values()
            if st.deploy is not None and st.deploy.status in ("active", "baking")
        )
        return EngineStats(
            tracked_series=self._series_count,
            late_events=self._late,
            duplicate_events=self._duplicates,
            series_cap_rejections=self._rejected,
            active_deploys=active,
            expired_services=self._expired,
        )

    def deploy_of(self, service: str, environment: str) -> DeployInfo | None:
        """The active or last deploy of a service, for manual rollbacks."""
        st = self._services.get((service, environment))
        if st is None or st.deploy is None:
            return None
        return st.deploy.info()

    def snapshot(self, service: str, environment: str) -> dict[str, Any] | None:
        """One service's state as JSON-able data (for a changelog), or None if unknown."""
        st = self._services.get((service, environment))
        return snapshot_service(st) if st is not None else None

    def restore(self, data: dict[str, Any]) -> None:
        """Replace one service's state with a snapshot taken by ``snapshot``."""
        restore_service(self, data)

    def explain(self, deploy_id: str) -> dict[str, Any] | None:
        """Why each candidate rule did or did not fire for a deploy; None if unknown."""
        found = self._deploys.get(deploy_id)
        if found is None:
            return None
        st, deploy = found
        return explain_deploy(st, deploy, self._check_rules)

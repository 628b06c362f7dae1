"""The engine: events and event time in, decisions out — a facade over the parts that own state.

Who owns what:

- ``rule_index.RuleIndex`` — the compiled rule pack, plans, disabled rules;
- ``services.ServiceTable`` — services and series, their event time, the
  series cap, and the one way to forget a service with all that hangs off it;
- ``deploys.DeployBook`` — deploys by id (for explain and late steps);
- ``timers.TimerQueue`` — typed timers (escalation, bake end, no-data);
- ``binding.Binder`` — which rules watch a series;
- ``intake.MetricIntake`` — the metric hot path (lateness, duplicates, windows);
- ``firing.Firing`` — the ``for`` clock, cooldown, one rollback per deploy;
- ``lifecycle.Lifecycle`` — deploy and check events, acting on due timers;
- ``snapshot`` — one service's state to a versioned snapshot and back.

Time: the engine reads no clock. Each service's "now" is its watermark, the
newest event time seen for it. ``feed`` applies an event, then lets event
time reach the newest event time fed (due timers fire), so replay, ``rules
test`` and the daemon (whatever its batch boundaries) see timers and events
interleaved alike. ``advance`` lets event time pass with no event (the end
of a replay); ``advance_idle`` is the daemon's idle tick: wall-clock time
passed with no input, which fires only rollback escalations (a bake end or a
silence check fired ahead of events still to come would judge them
differently from a replay of the same events). Idle services are swept once
a minute of event time; the same sweep unbinds the deploy-only rules of
services whose deploy stopped being live an hour ago (``binding.py``).

Limits: a rule is evaluated when its own series receives a sample (or, for
no-data, by a timer); a series that falls silent mid-``for`` is not
re-evaluated until its next sample. Rules that do not guard a deploy (alerts)
are judged at most every window/10 of event time, like a Prometheus
evaluation interval. Deploy events are never dropped as late (a ``started``
older than the current deploy is ignored as stale).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from guardian.engine.binding import Binder
from guardian.engine.decision import Decision, DeployInfo
from guardian.engine.deploys import DeployBook
from guardian.engine.explain import explain_deploy
from guardian.engine.firing import Firing
from guardian.engine.intake import MetricIntake
from guardian.engine.lifecycle import Lifecycle
from guardian.engine.rule_index import RuleIndex
from guardian.engine.rules.loader import RuleSet
from guardian.engine.services import RefusalReason, ServiceTable
from guardian.engine.snapshot import ServiceSnapshot, capture, restore
from guardian.engine.state import ServiceKey, ServiceState
from guardian.engine.timers import TimerQueue
from guardian.wire.events import CheckEvent, DeployEvent, InputEvent, MetricEvent

_NONE: list[Decision] = []
_SWEEP_EVERY_MS = 60_000  # event time between idle-service sweeps
_NO_SWEEP = 1 << 62
# How long (event time) a deploy's rules stay bound after it stopped being live, so that
# ``explain`` still shows them; then the sweep unbinds them and drops their windows.
_DEPLOY_RULES_KEPT_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class EngineStats:
    """Counters the daemon exports as metrics."""

    tracked_series: int
    late_events: int
    duplicate_events: int
    series_cap_rejections: int
    active_deploys: int
    expired_services: int
    # Events refused at the series cap, by reason (new_service, new_series); they sum
    # to ``series_cap_rejections``.
    series_refused: dict[RefusalReason, int] = field(default_factory=dict)
    series_cap: int = 0


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
        self._rules = RuleIndex(rules, allowed_lateness_ms=allowed_lateness_ms)
        self._timers = TimerQueue()
        self._deploys = DeployBook()
        self._services = ServiceTable(
            self._rules,
            self._deploys,
            self._timers,
            max_series=max_series,
            allowed_lateness_ms=allowed_lateness_ms,
        )
        self._binder = Binder(self._rules, self._timers)
        self._firing = Firing(self._rules, self._timers)
        self._intake = MetricIntake(
            self._services, self._binder, self._firing, allowed_lateness_ms=allowed_lateness_ms
        )
        self._lifecycle = Lifecycle(
            self._services, self._deploys, self._timers, self._rules, self._firing, self._binder
        )
        self._on_metric = self._intake.on_metric  # bound once: the hottest call
        # Services silent this long (event time) without a live deploy are forgotten.
        self._idle_ttl_ms = idle_ttl_ms
        self._next_sweep_ms = 0 if idle_ttl_ms is not None else _NO_SWEEP
        self._clock_ms = 0  # the newest event time fed

    # ------------------------------------------------------------------ rules
    @property
    def rules(self) -> RuleSet:
        """The rule pack in force."""
        return self._rules.rules

    @property
    def rule_errors(self) -> dict[str, str]:
        """Rules disabled after raising during evaluation, with the error (until a reload)."""
        return self._rules.errors

    def swap_rules(self, rules: RuleSet) -> None:
        """Hot reload: new rules take over; windows, deploys and matching progress are kept."""
        self._rules.install(rules)
        self._services.replan()
        for st in self._services.by_key.values():
            self._binder.rebind(st)

    # ------------------------------------------------------------------ events
    def process(self, event: InputEvent) -> list[Decision]:
        """Apply one event without letting event time pass; the decisions it causes."""
        if type(event) is MetricEvent:
            return self._on_metric(event)
        if type(event) is DeployEvent:
            return self._lifecycle.on_deploy(event)
        if type(event) is CheckEvent:
            return self._lifecycle.on_check(event)
        raise TypeError(f"not an input event: {type(event).__name__}")

    def feed(self, event: InputEvent) -> list[Decision]:
        """Apply one event, then let event time reach the newest event time fed.

        ``guardian replay``, ``rules test`` and the daemon's pipeline all feed
        events this way, so the same events in the same order decide alike.
        """
        out = self.process(event)
        ts: int = event.timestamp
        if ts > self._clock_ms:
            self._clock_ms = ts
            if self._timers.next_due <= ts or ts >= self._next_sweep_ms:
                due = self.advance(ts)
                if due:
                    out = [*out, *due]
        return out

    # ------------------------------------------------------------------ time
    def advance(self, now_ms: int) -> list[Decision]:
        """Let event time reach ``now_ms``: escalations, bake ends, no-data alerts, expiry."""
        if now_ms >= self._next_sweep_ms and self._idle_ttl_ms is not None:
            self._next_sweep_ms = now_ms + _SWEEP_EVERY_MS
            self._services.expire_idle(now_ms - self._idle_ttl_ms)
            for st in self._services.released_before(now_ms - _DEPLOY_RULES_KEPT_MS):
                self._binder.detach(st)
        return self._fire_due(now_ms, escalations_only=False)

    def advance_idle(self, now_ms: int) -> list[Decision]:
        """No input for a while, and the wall clock says ``now_ms``: fire due escalations only."""
        return self._fire_due(now_ms, escalations_only=True)

    def _fire_due(self, now_ms: int, *, escalations_only: bool) -> list[Decision]:
        timers = self._timers
        if timers.next_due > now_ms:
            return _NONE
        out: list[Decision] = []
        while (due := timers.pop(now_ms, escalations_only=escalations_only)) is not None:
            decision = self._lifecycle.fire(*due, now_ms)
            if decision is not None:
                out.append(decision)
        return out

    # ------------------------------------------------------------------ services
    def held_services(self) -> list[ServiceKey]:
        """Every (service, environment) with state in the engine."""
        return self._services.keys()

    def live_services(self) -> list[ServiceKey]:
        """Services with a deploy that is active or baking (their windows matter most)."""
        return self._services.live_keys()

    def forget_services(self, keys: list[ServiceKey]) -> int:
        """Drop these services with their series, deploys and timers; return how many."""
        return self._services.forget(keys)

    def snapshot(self, service: str, environment: str) -> ServiceSnapshot | None:
        """One service's state for a changelog (encode it before feeding more), or None."""
        st = self._services.by_key.get((service, environment))
        return capture(st) if st is not None else None

    def restore(self, snapshot: ServiceSnapshot) -> None:
        """Replace one service's state with a snapshot taken by ``snapshot``."""
        restore(
            snapshot,
            services=self._services,
            deploys=self._deploys,
            timers=self._timers,
            rules=self._rules,
            binder=self._binder,
        )

    # ------------------------------------------------------------------ queries
    @property
    def stats(self) -> EngineStats:
        """Current counters."""
        services = self._services
        return EngineStats(
            tracked_series=services.series_count,
            late_events=services.late,
            duplicate_events=self._intake.duplicates,
            series_cap_rejections=services.rejected,
            active_deploys=services.active_deploys(),
            expired_services=services.expired,
            series_refused=dict(services.refused),
            series_cap=services.max_series,
        )

    def deploy_of(self, service: str, environment: str) -> DeployInfo | None:
        """The active or last deploy of a service, for manual rollbacks."""
        st = self._services.by_key.get((service, environment))
        if st is None or st.deploy is None:
            return None
        return st.deploy.info()

    def inspect(self, service: str, environment: str) -> ServiceState | None:
        """The live state of one service, for tests and debugging; never mutate it."""
        return self._services.by_key.get((service, environment))

    def explain(self, deploy_id: str) -> dict[str, Any] | None:
        """Why each candidate rule did or did not fire for a deploy; None if unknown."""
        deploy = self._deploys.get(deploy_id)
        st = self._services.by_key.get(deploy.key) if deploy is not None else None
        if deploy is None or st is None:
            return None
        return explain_deploy(st, deploy, self._rules.check_rules)

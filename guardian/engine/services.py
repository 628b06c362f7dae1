"""The services and series this engine holds: admission, event time per service, forgetting.

``ServiceTable`` owns every ``ServiceState`` and every ``Series`` in them and
keeps two invariants: the series count it reports is the number of series
held (only it adds or removes a series), and forgetting a service removes
everything that hangs off it — its series, its deploys in the ``DeployBook``,
its timers — through one method, ``forget``, whatever the reason: a
rebalance moved it away, it was idle past the time-to-live, or a snapshot
replaces it.

It also admits events: the series cap (a flood of new names must not grow
memory; a live deploy's series always get in) and each service's watermark
(the newest event time seen for it; events older than the watermark minus
the allowed lateness are counted and refused). At the cap, an event that
would need a new series is refused and counted by reason: ``new_service``
(a name never seen, the flood a bad label produces) or ``new_series`` (a
known service's new region or cohort, with no live deploy). Series already
held keep being judged.

Limits: the cap counts series; the daemon derives it from a memory budget
(``memory_budget_mb``) and the measured bytes per series. A service silent
for the time-to-live but with a live deploy is kept however long it stays
silent; a live deploy's series may take the count past the cap.
"""

from __future__ import annotations

from collections.abc import Iterable
from sys import intern
from typing import Literal

from guardian.engine.deploys import DeployBook
from guardian.engine.rule_index import RuleIndex
from guardian.engine.state import Series, ServiceKey, ServiceState
from guardian.engine.timers import TimerQueue

RefusalReason = Literal["new_service", "new_series"]


class ServiceTable:
    """Every (service, environment) with state, and the counts about them."""

    __slots__ = (
        "_deploys",
        "_lateness",
        "_max_series",
        "_rules",
        "_series_count",
        "_timers",
        "by_key",
        "expired",
        "late",
        "refused",
    )

    def __init__(
        self,
        rules: RuleIndex,
        deploys: DeployBook,
        timers: TimerQueue,
        *,
        max_series: int,
        allowed_lateness_ms: int,
    ) -> None:
        self._rules = rules
        self._deploys = deploys
        self._timers = timers
        self._max_series = max_series
        self._lateness = allowed_lateness_ms
        # Read it freely (the hot path looks services up here); change it only through methods.
        self.by_key: dict[ServiceKey, ServiceState] = {}
        self._series_count = 0
        self.late = 0  # events refused as older than their service's lateness horizon
        # Events refused at the series cap, by reason (see the module docstring).
        self.refused: dict[RefusalReason, int] = {"new_service": 0, "new_series": 0}
        self.expired = 0  # services forgotten for being idle

    @property
    def rejected(self) -> int:
        """Events refused at the series cap, for any reason."""
        return sum(self.refused.values())

    @property
    def max_series(self) -> int:
        """The series cap (a live deploy's series may go past it)."""
        return self._max_series

    @property
    def series_count(self) -> int:
        """How many series are held."""
        return self._series_count

    def service(self, service: str, environment: str) -> ServiceState:
        """The state of a service, created (with the plan of the rules in force) if new."""
        key = (service, environment)
        st = self.by_key.get(key)
        if st is None:
            environment = intern(environment)  # a handful of names for the whole fleet
            st = ServiceState(service, environment, self._rules.plan(service, environment))
            self.by_key[st.key] = st
        return st

    def admit(self, service: str, environment: str) -> ServiceState | None:
        """State for a metric's service seen for the first time, unless the cap is reached."""
        if self._series_count >= self._max_series:
            self.refused["new_service"] += 1  # no state for a flood of new names
            return None
        return self.service(service, environment)

    def observe(self, st: ServiceState, ts: int) -> bool:
        """Move the service's watermark to ``ts``; False (counted late) if ``ts`` is too old."""
        if ts > st.watermark:
            st.watermark = ts
        elif ts < st.watermark - self._lateness:
            self.late += 1
            return False
        return True

    def new_series(
        self, st: ServiceState, region: str, cohort: str, *, force: bool = False
    ) -> Series | None:
        """A new, unbound series of ``st``, unless the cap is reached and no deploy is live.

        ``force`` (a restore) admits it whatever the cap: it was held before.
        """
        if self._series_count >= self._max_series and not (force or st.deploy_live):
            self.refused["new_series"] += 1  # junk must never cost a real deploy its rollback
            return None
        self._series_count += 1
        # Region and cohort names repeat across every service: one copy of each.
        region, cohort = intern(region), intern(cohort)
        series = st.series[(region, cohort)] = Series(region, cohort)
        return series

    def forget(self, keys: Iterable[ServiceKey]) -> int:
        """Drop these services with their series, deploys and timers; return how many there were."""
        gone = []
        for key in keys:
            st = self.by_key.pop(key, None)
            if st is not None:
                self._series_count -= len(st.series)
                gone.append(key)
        if gone:
            self._deploys.forget(gone)
            self._timers.forget(gone)
        return len(gone)

    def expire_idle(self, cutoff_ms: int) -> int:
        """Forget services with no event since ``cutoff_ms`` and no live deploy; return how many.

        Service names come and go (renames, short-lived environments); without
        this their state would stay until the series cap, which then turns new
        names away. An expired service that sends again starts afresh.
        """
        idle = [
            key
            for key, st in self.by_key.items()
            if st.watermark < cutoff_ms and not st.deploy_live
        ]
        count = self.forget(idle)
        self.expired += count
        return count

    def released_before(self, cutoff_ms: int) -> list[ServiceState]:
        """Services with deploy-only rules still bound whose deploy stopped being live by then."""
        return [
            st
            for st in self.by_key.values()
            if 0 <= st.released_ms < cutoff_ms and not st.deploy_live
        ]

    def replan(self) -> None:
        """After a reload: every service takes the plan of the new rules."""
        plan = self._rules.plan
        for st in self.by_key.values():
            st.plan = plan(st.service, st.environment)

    def keys(self) -> list[ServiceKey]:
        """Every (service, environment) held."""
        return list(self.by_key)

    def live_keys(self) -> list[ServiceKey]:
        """Services with a deploy that is active or baking."""
        return [key for key, st in self.by_key.items() if st.deploy_live]

    def active_deploys(self) -> int:
        """How many services have a deploy that is active or baking."""
        return sum(
            1
            for st in self.by_key.values()
            if st.deploy is not None and st.deploy.status in ("active", "baking")
        )

"""A metric event's way into the engine: admission, lateness, duplicates, windows, judging.

``MetricIntake.on_metric`` finds (or admits) the service and series, refuses
events older than the service's lateness horizon and exact duplicates
(counted), feeds the series' windows and baseline buckets, and hands the
series to the firing policy. A series without a live deploy skips judging
until its next always-on rule is due (``Series.eval_at``).

Limits: this is the hottest path of the guardian (every metric event); it
does no more than look up, feed and hand on.
"""

from __future__ import annotations

from guardian.engine.binding import Binder
from guardian.engine.decision import Decision
from guardian.engine.firing import Firing
from guardian.engine.services import ServiceTable
from guardian.engine.state import Series, ServiceState
from guardian.wire.events import MetricEvent

_NONE: list[Decision] = []


class MetricIntake:
    """Feeds metric events to windows and judges the series they land on."""

    __slots__ = ("_binder", "_firing", "_lateness", "_services", "duplicates")

    def __init__(
        self, services: ServiceTable, binder: Binder, firing: Firing, *, allowed_lateness_ms: int
    ) -> None:
        self._services = services
        self._binder = binder
        self._firing = firing
        self._lateness = allowed_lateness_ms
        self.duplicates = 0  # exact duplicates refused

    def on_metric(self, ev: MetricEvent) -> list[Decision]:
        """Apply one metric event; return the decisions it causes (usually none)."""
        services = self._services
        st = services.by_key.get((ev.service, ev.environment)) or services.admit(
            ev.service, ev.environment
        )
        if st is None:
            return _NONE
        ts: int = ev.timestamp
        if not services.observe(st, ts):
            return _NONE
        version = ev.version
        if version is not None and version not in (st.live_version, st.prior_version):
            st.saw_version(version)  # a version new to the service: rare
        region = ev.region or ""
        cohort = ev.cohort or ""
        series = st.series.get((region, cohort)) or self._new_series(st, region, cohort)
        if series is None:
            return _NONE
        values = ev.values
        now = st.watermark
        if not series.remember(ts, values, now - self._lateness):
            self.duplicates += 1
            return _NONE
        for agg in series.feeders:
            agg.feed(ts, values, now)
        if series.buckets is not None:
            series.buckets.feed(ts, values)
        if st.deploy_live:
            for sliding in series.deploy_feeders:
                sliding.feed(ts, values, now)
            if series.stat_feeds:
                deploy_id = st.deploy.deploy_id  # type: ignore[union-attr]
                for feed in series.stat_feeds:
                    feed(ts, values, deploy_id)
        elif now < series.eval_at:
            return _NONE  # no deploy and no always-on rule due: nothing to judge
        return self._firing.judge(st, series)

    def _new_series(self, st: ServiceState, region: str, cohort: str) -> Series | None:
        series = self._services.new_series(st, region, cohort)
        if series is not None:
            self._binder.bind(st, series)
        return series

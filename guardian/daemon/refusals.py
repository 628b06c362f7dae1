"""Series refused at the cap: the engine's counts turned into a metric and a warning.

The engine is pure, so it only counts the events it refused for want of a new
series (``EngineStats.series_refused``, by reason). ``RefusalReport`` takes
those running totals every few seconds, adds the increments to
``guardian_series_refused_total{reason}`` and logs ``series_refused`` at
warning level: at once the first time the cap bites, then at most once per
``warn_every_s`` with the count since the last line, so a flood of names is
a few lines an hour, not one per event.

Limits: counts are of events, not of distinct names (remembering refused
names would cost the memory the cap protects).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from guardian.engine import EngineStats
from guardian.metrics import GuardianMetrics

log = structlog.get_logger(__name__)

WARN_EVERY_S = 60.0


class RefusalReport:
    """Exports the engine's refusal totals as increments, with a rate-limited warning."""

    def __init__(
        self,
        metrics: GuardianMetrics,
        *,
        warn_every_s: float = WARN_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._warn_every_s = warn_every_s
        self._clock = clock
        self._exported: dict[str, int] = {}
        self._unwarned: dict[str, int] = {}  # refused since the last warning line
        self._warned_at: float | None = None

    def update(self, stats: EngineStats) -> None:
        """Take the engine's current totals; count the increments and maybe warn."""
        self._metrics.series_cap.set(stats.series_cap)
        for reason, total in stats.series_refused.items():
            delta = total - self._exported.get(reason, 0)
            if delta <= 0:
                continue
            self._exported[reason] = total
            self._metrics.series_refused.labels(reason).inc(delta)
            self._unwarned[reason] = self._unwarned.get(reason, 0) + delta
        now = self._clock()
        if not self._unwarned:
            return
        if self._warned_at is not None and now - self._warned_at < self._warn_every_s:
            return
        self._warned_at = now
        log.warning(
            "series_refused",
            series_cap=stats.series_cap,
            tracked_series=stats.tracked_series,
            **dict(sorted(self._unwarned.items())),
            hint="raise memory_budget_mb (or max_series), or fix the label that makes names",
        )
        self._unwarned = {}

"""The inputs' Prometheus metrics: one place that turns a conversion's counts into them."""

from __future__ import annotations

from collections.abc import Mapping

from guardian.inputs.cumulative import SeriesState
from guardian.metrics import GuardianMetrics


class InputAccount:
    """Counts what one input read, wrote and left out, and how much state it keeps."""

    def __init__(
        self, metrics: GuardianMetrics, source: str, state: SeriesState | None = None
    ) -> None:
        self._metrics = metrics
        self._source = source
        self._state = state
        self._evicted = 0  # the state's running total as last exported

    def record(self, samples: int, events: int, skipped: Mapping[str, int]) -> None:
        """One batch (an OTLP poll, a remote-write request) is written."""
        metrics, source = self._metrics, self._source
        metrics.input_samples.labels(source).inc(samples)
        metrics.input_events.labels(source).inc(events)
        for reason, count in skipped.items():
            metrics.input_samples_skipped.labels(source, reason).inc(count)
        if self._state is None:
            return  # an input without cumulative state (CDEvents)
        metrics.input_series.labels(source).set(len(self._state))
        evicted = self._state.evicted
        if evicted > self._evicted:
            metrics.input_series_evicted.labels(source).inc(evicted - self._evicted)
            self._evicted = evicted

    def outcome(self, outcome: str, count: int = 1) -> None:
        """Count records or requests by outcome."""
        if count:
            self._metrics.input_batches.labels(self._source, outcome).inc(count)

"""Reading the daemon's own metrics in in-process tests."""

from __future__ import annotations

from prometheus_client import CollectorRegistry


def events_consumed(registry: CollectorRegistry) -> float:
    """Records the daemon has taken from its input topics, all topics together."""
    return sum(
        sample.value
        for metric in registry.collect()
        if metric.name == "guardian_events_consumed"
        for sample in metric.samples
        if sample.name == "guardian_events_consumed_total"
    )

"""Builders of v1 events for tests: deploys and steady metric traffic."""

from __future__ import annotations

from typing import Any

T0 = 1795478400000  # 2026-11-24T00:00:00Z


def deploy(
    kind: str = "started",
    *,
    deploy_id: str = "d-1",
    service: str = "checkout",
    at_ms: int = T0,
    strategy: str = "canary",
    component: str = "application",
    regions: tuple[str, ...] = ("us-east",),
    **extra: Any,
) -> dict[str, Any]:
    """A deploy event."""
    return {
        "kind": "deploy",
        "type": kind,
        "deploy_id": deploy_id,
        "service": service,
        "environment": "production",
        "version": "2.4.1",
        "previous_version": "2.4.0",
        "strategy": strategy,
        "component": component,
        "regions": list(regions),
        "traffic_percent": 5,
        "timestamp": at_ms,
        "actor": "ci",
        **extra,
    }


def traffic(
    *,
    service: str = "checkout",
    start_ms: int = T0,
    seconds: int = 120,
    every_s: int = 1,
    requests: int = 25,
    error_rate: float = 0.0,
    region: str = "us-east",
    cohort: str | None = None,
    latency_ms: float = 120.0,
) -> list[dict[str, Any]]:
    """Metric events of one series, one every ``every_s`` seconds."""
    events = []
    for i in range(0, seconds, every_s):
        event: dict[str, Any] = {
            "kind": "metric",
            "service": service,
            "environment": "production",
            "region": region,
            "version": "2.4.1",
            "timestamp": start_ms + i * 1000,
            "values": {
                "requests": requests,
                "errors": round(requests * error_rate),
                "latency_p95_ms": latency_ms,
                "latency_p99_ms": latency_ms * 2,
                "availability": 1.0 - error_rate,
                "cpu_utilization": 0.4,
                "memory_utilization": 0.5,
            },
        }
        if cohort:
            event["cohort"] = cohort
        events.append(event)
    return events

"""A mixed recording of several services, for tests that compare daemon and replay."""

from __future__ import annotations

from typing import Any

from tests.support.events import T0, deploy, traffic


def mixed_recording() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(deploy and check events, metric events) for five services with different fates."""
    deploys = [
        deploy(deploy_id="d-canary-bad", service="checkout", strategy="canary"),
        deploy(deploy_id="d-rolling-ok", service="search", strategy="rolling"),
        deploy(
            deploy_id="d-db-bad",
            service="ledger",
            strategy="rolling",
            component="database",
            at_ms=T0 + 30_000,
        ),
        deploy(deploy_id="d-bg", service="profile", strategy="blue_green", at_ms=T0),
        {
            "kind": "check",
            "service": "profile",
            "environment": "production",
            "region": "us-east",
            "deploy_id": "d-bg",
            "check": "api_health",
            "status": "fail",
            "detail": "5/5 probes timed out",
            "timestamp": T0 + 120_000,
        },
    ]
    metrics = [
        # checkout: pre-deploy stable traffic, then a bad canary.
        *traffic(
            service="checkout",
            start_ms=T0 - 600_000,
            seconds=600,
            every_s=5,
            requests=100,
            error_rate=0.005,
            cohort="stable",
        ),
        *traffic(service="checkout", seconds=180, requests=30, error_rate=0.09, cohort="canary"),
        *traffic(
            service="checkout",
            seconds=180,
            every_s=5,
            requests=100,
            error_rate=0.005,
            cohort="stable",
        ),
        # search: healthy rolling deploy.
        *traffic(
            service="search",
            start_ms=T0 - 300_000,
            seconds=480,
            every_s=2,
            requests=60,
            error_rate=0.004,
        ),
        # ledger: healthy, then bad after its deploy at +30s.
        *traffic(
            service="ledger",
            start_ms=T0 - 300_000,
            seconds=330,
            every_s=2,
            requests=50,
            error_rate=0.002,
        ),
        *traffic(service="ledger", start_ms=T0 + 30_000, seconds=150, requests=25, error_rate=0.12),
        # inventory: no deploy, CPU-hot → notify-only alerting.
        *[
            {**event, "values": {**event["values"], "cpu_utilization": 0.93}}
            for event in traffic(service="inventory", seconds=600, every_s=5, requests=40)
        ],
    ]
    metrics.sort(key=lambda event: int(event["timestamp"]))
    return deploys, metrics

"""Small builders of input events and rule packs for engine tests (times in seconds)."""

from __future__ import annotations

from typing import Any

from guardian.engine import Engine, RuleSet, parse_rules
from guardian.engine.decision import Decision
from guardian.wire.events import CheckEvent, DeployEvent, EventTime, InputEvent, MetricEvent

T0 = 1_795_478_400_000


def at(seconds: float) -> EventTime:
    """Event time ``seconds`` after the test epoch."""
    return EventTime(T0 + round(seconds * 1000))


def metric(
    seconds: float,
    region: str = "us-east",
    cohort: str | None = None,
    service: str = "checkout",
    **values: float,
) -> MetricEvent:
    """A metric event."""
    return MetricEvent(
        service=service,
        environment="production",
        timestamp=at(seconds),
        region=region,
        cohort=cohort,  # type: ignore[arg-type]
        values=dict(values),
    )


def deploy(
    seconds: float, type_: str = "started", deploy_id: str = "d1", **fields: Any
) -> DeployEvent:
    """A deploy lifecycle event."""
    base: dict[str, Any] = {
        "service": "checkout",
        "environment": "production",
        "version": "2.0.0",
        "previous_version": "1.9.0",
        "regions": ["us-east"],
    }
    base.update(fields)
    return DeployEvent(type=type_, deploy_id=deploy_id, timestamp=at(seconds), **base)  # type: ignore[arg-type]


def check(
    seconds: float, name: str = "api_health", status: str = "fail", **fields: Any
) -> CheckEvent:
    """A check event."""
    base: dict[str, Any] = {"service": "checkout", "environment": "production"}
    base.update(fields)
    return CheckEvent(check=name, status=status, timestamp=at(seconds), **base)  # type: ignore[arg-type]


def rules(text: str) -> RuleSet:
    """A pack from YAML text."""
    return parse_rules(text, "test.yaml")


def run(engine: Engine, events: list[InputEvent]) -> list[Decision]:
    """Feed events as replay and the daemon do (``Engine.feed``, timers in stream order)."""
    out: list[Decision] = []
    for event in events:
        out.extend(engine.feed(event))
    return out


ERROR_RULE = """
rules:
  - name: errors
    metric: error_rate
    window: 10s
    condition: "> 5%"
    for: 10s
    min_samples: 2
    min_volume: {metric: requests, at_least: 50}
    action: rollback
"""


def bad_traffic(start: float, seconds: int, errors: float = 5.0, **kw: Any) -> list[InputEvent]:
    """One sample per second of 20 requests with ``errors`` failures."""
    return [metric(start + i, requests=20, errors=errors, **kw) for i in range(seconds)]

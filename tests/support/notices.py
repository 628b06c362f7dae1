"""Build real outbox entries (through the lead's ``notification_entry``) for notifier tests."""

from __future__ import annotations

from typing import Any

import orjson

from guardian.actions.commands import command_from_decision
from guardian.actions.outputs import notification_entry
from guardian.engine.decision import Action, Decision, DecisionState, DeployInfo, Severity
from tests.support.kafka import produce

T0 = 1_795_478_400_000  # 2026-11-24T10:00:00Z


def deploy(service: str = "checkout", deploy_id: str = "d-8812") -> DeployInfo:
    """A canary deploy of 2.4.1 replacing 2.4.0."""
    return DeployInfo(
        deploy_id=deploy_id,
        service=service,
        environment="production",
        version="2.4.1",
        previous_version="2.4.0",
        strategy="canary",
        component="application",
        regions=("us-east",),
        started_at_ms=T0,
    )


def decision(
    *,
    service: str = "checkout",
    deploy_id: str | None = "d-8812",
    rule: str = "error-rate-critical",
    action: Action = "rollback",
    severity: Severity = "critical",
    state: DecisionState = "firing",
    at_ms: int = T0 + 252_345,
    observed: float = 0.083,
) -> Decision:
    """A decision with error-rate evidence, about ``deploy_id`` (None: no deploy)."""
    return Decision(
        at_ms=at_ms,
        rule=rule,
        action=action,
        severity=severity,
        service=service,
        environment="production",
        deploy=deploy(service, deploy_id) if deploy_id else None,
        regions=("us-east",),
        reason=f"error rate {observed * 100:.3g}% over 5m > 5% (baseline 0.4%)",
        evidence={
            "metric": "error_rate",
            "observed": observed,
            "threshold": 0.05,
            "baseline": 0.004,
            "window_s": 300,
            "samples": 41,
        },
        state=state,
    )


def entry(signing_key: bytes | None = None, **kwargs: Any) -> dict[str, Any]:
    """The outbox entry the daemon writes for ``decision(**kwargs)``."""
    d = decision(**kwargs)
    command = command_from_decision(d, issued_at_ms=d.at_ms, signing_key=signing_key)
    return notification_entry(d, now_ms=d.at_ms, command=command)


def service_of(outbox_entry: dict[str, Any]) -> str:
    """The service an outbox entry is about (its Kafka key, as the daemon writes it)."""
    decision = outbox_entry.get("decision") or {}
    return str(outbox_entry.get("service") or decision.get("service") or "")


async def produce_entries(bootstrap: str, topic: str, entries: list[dict[str, Any]]) -> None:
    """Write outbox entries keyed by service, like the daemon does."""
    await produce(bootstrap, topic, [(service_of(e).encode(), orjson.dumps(e)) for e in entries])

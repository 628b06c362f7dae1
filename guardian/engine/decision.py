"""What the engine hands to the rest of the guardian: decisions about deploys.

A ``Decision`` is a plain, immutable value: which rule decided what, when (in
event time), about which deploy and regions, and the evidence. Everything
downstream (commands, audit, notifications, ``guardian replay``) is built
from it, which is why replay and the daemon print the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["rollback", "pause", "notify", "escalate"]
Severity = Literal["critical", "warning", "info"]
DecisionState = Literal["firing", "resolved"]
DeployStatus = Literal["active", "baking", "completed", "rolled_back", "failed"]


@dataclass(frozen=True, slots=True)
class DeployInfo:
    """What the engine knows of one deploy when it decides."""

    deploy_id: str
    service: str
    environment: str
    version: str
    previous_version: str | None
    strategy: str
    component: str
    regions: tuple[str, ...]
    started_at_ms: int
    status: DeployStatus = "active"
    completed_at_ms: int | None = None
    # The rule of the guardian's rollback decision on this deploy, if it made one.
    rollback_rule: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """One rule's verdict at one moment of event time."""

    at_ms: int
    rule: str
    action: Action
    severity: Severity
    service: str
    environment: str
    deploy: DeployInfo | None
    regions: tuple[str, ...]
    reason: str
    evidence: dict[str, Any]
    state: DecisionState = "firing"
    dry_run: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    # Rules that fired on the same deploy after its rollback decision, kept as evidence.
    related: tuple[dict[str, Any], ...] = ()

    @property
    def deploy_id(self) -> str | None:
        """The deploy this decision is about, or None for always-on alerting."""
        return self.deploy.deploy_id if self.deploy is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape ``guardian replay --format jsonl`` prints and audit records carry."""
        from guardian.wire.records import format_time

        return {
            "at": format_time(self.at_ms),
            "rule": self.rule,
            "action": self.action,
            "severity": self.severity,
            "state": self.state,
            "dry_run": self.dry_run,
            "service": self.service,
            "environment": self.environment,
            "deploy_id": self.deploy_id,
            "regions": list(self.regions),
            "labels": dict(self.labels),
            "reason": self.reason,
            "evidence": dict(self.evidence),
        }

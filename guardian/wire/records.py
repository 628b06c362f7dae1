"""Output records of wire contract v1: rollback commands, audit records, dead letters.

These are pydantic models: they are built a few times per incident, not per
event, and pydantic gives executors a JSON Schema to check against. Field
names and meanings follow DESIGN.md; changing them is a new contract version.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Procedure = Literal["container_version_switch", "version_rollback", "point_in_time_recovery"]
TrafficAction = Literal["switch_back", "set_weight", "halt_and_revert", "redeploy_previous"]
Trigger = Literal["automatic", "manual"]

PROCEDURE_BY_COMPONENT: dict[str, Procedure] = {
    "application": "container_version_switch",
    "configuration": "version_rollback",
    "database": "point_in_time_recovery",
}


def format_time(ms: int) -> str:
    """RFC 3339 with milliseconds and a ``Z`` suffix, the form every output record uses."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Traffic(_Record):
    """What the executor does with traffic; follows the deploy strategy."""

    action: TrafficAction
    weight: int | None = None
    regions: list[str] | None = None
    instant: bool = False


class Evidence(BaseModel):
    """Why: the measured value against the threshold and baseline, and how much data."""

    model_config = ConfigDict(frozen=True, extra="allow")

    metric: str | None = None
    observed: float | str | None = None
    threshold: float | str | None = None
    baseline: float | None = None
    window_s: float | None = None
    samples: int | None = None


class RollbackCommand(_Record):
    """An instruction to an executor to roll one deploy back."""

    kind: Literal["rollback_command"] = "rollback_command"
    version: Literal[1] = 1
    command_id: str
    deploy_id: str
    service: str
    environment: str
    regions: list[str]
    from_version: str
    to_version: str | None
    strategy: str
    component: str
    procedure: Procedure
    recovery_point: str | None = None
    traffic: Traffic
    trigger: Trigger
    rule: str | None
    reason: str
    evidence: Evidence
    related: list[dict[str, Any]] = Field(default_factory=list)
    requested_by: str | None = None
    approved_by: str | None = None
    issued_at: str
    signature: str | None = None


class AuditRecord(_Record):
    """One line of the guardian's audit trail: a decision, a manual step, a reload."""

    kind: Literal["audit"] = "audit"
    audit_id: str
    at: str
    event: str
    service: str | None = None
    environment: str | None = None
    deploy_id: str | None = None
    rule: str | None = None
    action: str | None = None
    actor: str | None = None
    command_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class DeadLetterSource(_Record):
    """Where a rejected record came from."""

    transport: Literal["kafka", "mqtt", "file", "http"]
    topic: str  # for "http": the request's path
    partition: int | None = None
    offset: int | None = None


class DeadLetter(_Record):
    """A record the guardian could not use, with the reason and the original bytes."""

    kind: Literal["dead_letter"] = "dead_letter"
    source: DeadLetterSource
    reason: str
    received_at: str
    original_b64: str
    original_size: int
    truncated: bool = False

    @classmethod
    def wrap(
        cls,
        *,
        source: DeadLetterSource,
        reason: str,
        original: bytes,
        received_at_ms: int,
        max_original_bytes: int,
    ) -> DeadLetter:
        """Build a dead letter, truncating the original so the record fits the broker's limit."""
        kept = original[:max_original_bytes]
        return cls(
            source=source,
            reason=reason[:2000],
            received_at=format_time(received_at_ms),
            original_b64=base64.b64encode(kept).decode("ascii"),
            original_size=len(original),
            truncated=len(kept) < len(original),
        )

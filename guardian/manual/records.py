"""Records a manual step writes: the rollback command, audit records and notification entries.

Pure. Notification entries reuse ``guardian.actions.outputs.notification_entry``
with a ``Decision`` of rule ``manual-rollback``, so the notifier renders a
manual step like any other decision: a request and its approval fire
(``notify`` then ``rollback``), a denial or an expiry resolves. Audit and
notification ids derive from (request, step), so a step written twice (a
retried approval, two replicas expiring the same request) is recognisable
downstream.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import orjson

from guardian.actions.commands import build_command
from guardian.actions.outputs import notification_entry
from guardian.engine.decision import Action, Decision, DecisionState, Severity
from guardian.manual.requests import RollbackRequest
from guardian.wire.records import AuditRecord, RollbackCommand, format_time

Step = Literal["requested", "approved", "denied", "expired"]
MANUAL_RULE = "manual-rollback"

_STEP_SHAPE: dict[Step, tuple[Action, Severity, DecisionState]] = {
    "requested": ("notify", "warning", "firing"),
    "approved": ("rollback", "critical", "firing"),
    "denied": ("notify", "info", "resolved"),
    "expired": ("notify", "info", "resolved"),
}


@dataclass(frozen=True, slots=True)
class ManualOutput:
    """One record to write: which topic (by role), its key and its bytes."""

    role: Literal["command", "audit", "notification"]
    key: bytes
    value: bytes


def manual_command(
    req: RollbackRequest, *, approved_by: str, now_ms: int, signing_key: bytes | None
) -> RollbackCommand:
    """The signed manual rollback command for an approved request."""
    return build_command(
        req.deploy,
        trigger="manual",
        rule=MANUAL_RULE,
        reason=req.reason,
        issued_at_ms=now_ms,
        requested_by=req.requested_by,
        approved_by=approved_by,
        request_id=req.id,
        signing_key=signing_key,
    )


def _describe(req: RollbackRequest, step: Step) -> str:
    target = f"{req.service}/{req.environment} deploy {req.deploy.deploy_id}"
    if step == "requested":
        return f"{req.requested_by} requests a rollback of {target}: {req.reason}"
    if step == "approved":
        return f"{req.decided_by} approved {req.requested_by}'s rollback of {target}: {req.reason}"
    if step == "denied":
        return f"{req.decided_by} denied the rollback of {target}: {req.decision_reason}"
    return f"nobody decided on the rollback of {target} in time; the request expired"


def step_decision(req: RollbackRequest, step: Step, now_ms: int) -> Decision:
    """The manual step as a ``Decision`` (what notifications and audit details carry)."""
    action, severity, state = _STEP_SHAPE[step]
    return Decision(
        at_ms=now_ms,
        rule=MANUAL_RULE,
        action=action,
        severity=severity,
        service=req.service,
        environment=req.environment,
        deploy=req.deploy,
        regions=req.deploy.regions,
        reason=_describe(req, step),
        evidence={"request_id": req.id, "step": step, "requested_by": req.requested_by},
        state=state,
        labels={"request_id": req.id, "step": step},
    )


def step_outputs(
    req: RollbackRequest,
    step: Step,
    *,
    now_ms: int,
    actor: str,
    command: RollbackCommand | None = None,
) -> list[ManualOutput]:
    """The command (approvals only), audit record and notification entry of one step."""
    key = req.service.encode()
    decision = step_decision(req, step, now_ms)
    outputs: list[ManualOutput] = []
    if command is not None:
        outputs.append(ManualOutput("command", key, command.model_dump_json().encode()))
    audit = AuditRecord(
        audit_id="au-" + hashlib.sha256(f"manual|{req.id}|{step}".encode()).hexdigest()[:24],
        at=format_time(now_ms),
        event=f"manual_{step}",
        service=req.service,
        environment=req.environment,
        deploy_id=req.deploy.deploy_id,
        rule=MANUAL_RULE,
        action=decision.action,
        actor=actor,
        command_id=command.command_id if command else None,
        details={"request": req.to_dict(), "decision": decision.to_dict()},
    )
    outputs.append(ManualOutput("audit", key, audit.model_dump_json().encode()))
    entry = notification_entry(decision, now_ms=now_ms, command=command)
    outputs.append(ManualOutput("notification", key, orjson.dumps(entry)))
    return outputs

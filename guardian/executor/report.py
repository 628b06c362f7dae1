"""What the executor writes about a command: the deploy event, the audit record, the outcome.

Pure builders. A rollback's outcome goes back on the deploy topic as a v1
deploy event of the command's deploy — ``rolled_back`` when every target
converged, ``failed`` (with ``detail`` saying why) otherwise — which the
guardian already understands: the incident resolves, the escalation timer
stops. Its ``version`` is the deploy's version (the command's
``from_version``) and ``previous_version`` the one running again, the form
the guardian expects of a ``rolled_back`` step. A pause reports no deploy
event (the deploy is still live, only held); its outcome is audited.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from guardian.executor.apply import TargetOutcome
from guardian.executor.command import Command
from guardian.wire.records import AuditRecord, format_time

ACTOR = "guardian-executor"
_STRATEGIES = ("blue_green", "canary", "progressive", "rolling")
_COMPONENTS = ("application", "configuration", "database")
CommandStatus = Literal["rolled_back", "paused", "failed", "dry_run", "interrupted"]


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """The outcome of one command over all its targets."""

    status: CommandStatus
    reason: str
    targets: tuple[TargetOutcome, ...]

    @classmethod
    def of(cls, targets: tuple[TargetOutcome, ...]) -> CommandOutcome:
        """Every target must succeed for the command to; the failures say why."""
        failed = [t for t in targets if t.status == "failed"]
        if not targets:
            return cls("failed", "no target", targets)
        if any(t.status == "interrupted" for t in targets):
            return cls("interrupted", "stopped before the rollout finished", targets)
        if failed:
            return cls("failed", "; ".join(f"{t.target}: {t.reason}" for t in failed), targets)
        status = targets[0].status
        return cls(status, "; ".join(f"{t.target}: {t.reason}" for t in targets), targets)

    def details(self) -> dict[str, Any]:
        """The outcome as JSON."""
        return {"reason": self.reason, "targets": [t.to_dict() for t in self.targets]}


def deploy_event(command: Command, outcome: CommandOutcome, now_ms: int) -> dict[str, Any] | None:
    """The v1 deploy event reporting a rollback's outcome; None for a pause."""
    if command.action != "rollback" or outcome.status not in ("rolled_back", "failed"):
        return None
    return {
        "kind": "deploy",
        "type": outcome.status,
        "deploy_id": command.deploy_id,
        "service": command.service,
        "environment": command.environment,
        "version": command.from_version,
        "previous_version": command.to_version,
        "strategy": command.strategy if command.strategy in _STRATEGIES else "rolling",
        "component": command.component if command.component in _COMPONENTS else "application",
        "regions": list(command.regions),
        "timestamp": now_ms,
        "actor": ACTOR,
        # Unknown fields are ignored by v1 readers; people reading the topic get the why.
        "command_id": command.command_id,
        "detail": outcome.reason[:2000],
    }


def audit_record(
    event: str,
    now_ms: int,
    *,
    command: Command | None,
    details: dict[str, Any],
    command_id: str | None = None,
) -> AuditRecord:
    """One audit record of the executor (applied, failed, paused, refused)."""
    cid = command.command_id if command is not None else command_id
    material = f"{event}|{cid}|{now_ms}".encode()
    return AuditRecord(
        audit_id="ex-" + hashlib.sha256(material).hexdigest()[:24],
        at=format_time(now_ms),
        event=event,
        service=command.service if command else None,
        environment=command.environment if command else None,
        deploy_id=command.deploy_id if command else None,
        rule=command.rule if command else None,
        action=command.action if command else None,
        actor=ACTOR,
        command_id=cid,
        details=details,
    )

"""Decision → the records the guardian writes: command, audit record, notification entry.

Each output is a ``OutputRecord`` (topic role, key, JSON bytes). Roles are
mapped to topic names by the daemon, so this module knows no settings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from guardian.actions.commands import command_from_decision
from guardian.engine.decision import Decision
from guardian.wire.records import AuditRecord, RollbackCommand, format_time
from guardian.wire.signing import SigningError, sign

# "deploy" and "metric" carry input events on to their Kafka topic (MQTT events
# for services another replica owns); "incident" is the CDEvents incident topic.
Role = Literal["command", "audit", "notification", "dlq", "state", "deploy", "metric", "incident"]


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One record to write: which topic (by role), its key and its bytes."""

    role: Role
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


def _stable_id(prefix: str, *parts: str) -> str:
    return prefix + hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def decision_key(decision: Decision) -> str:
    """Identity of a decision: the same decision on redelivery gets the same key."""
    labels = ",".join(f"{k}={v}" for k, v in sorted(decision.labels.items()))
    return "|".join(
        (
            decision.service,
            decision.environment,
            decision.deploy_id or "-",
            decision.rule,
            decision.action,
            decision.state,
            str(decision.at_ms),
            labels,
        )
    )


def audit_for(decision: Decision, *, now_ms: int, command: RollbackCommand | None) -> AuditRecord:
    """The audit record of a decision, with its full explanation."""
    return AuditRecord(
        audit_id=_stable_id("au-", "decision", decision_key(decision)),
        at=format_time(now_ms),
        event="decision_dry_run" if decision.dry_run else "decision",
        service=decision.service,
        environment=decision.environment,
        deploy_id=decision.deploy_id,
        rule=decision.rule,
        action=decision.action,
        actor="guardian",
        command_id=command.command_id if command else None,
        details={"decision": decision.to_dict()},
    )


def notification_entry(
    decision: Decision, *, now_ms: int, command: RollbackCommand | None
) -> dict[str, Any]:
    """The outbox entry the notifier turns into Slack and email messages."""
    deploy = decision.deploy
    return {
        "kind": "notification",
        "notification_id": _stable_id("nt-", decision_key(decision)),
        "created_at": format_time(now_ms),
        "decision": decision.to_dict(),
        "deploy": None
        if deploy is None
        else {
            "deploy_id": deploy.deploy_id,
            "version": deploy.version,
            "previous_version": deploy.previous_version,
            "strategy": deploy.strategy,
            "component": deploy.component,
            "regions": list(deploy.regions),
        },
        "command": command.model_dump(mode="json") if command else None,
    }


def _signed(pause: dict[str, Any], signing_key: bytes | None) -> dict[str, Any]:
    """The pause command signed like a rollback command (executors refuse unsigned ones).

    Signed as written (orjson writes a non-finite float as null); evidence JCS
    cannot canonicalize (an integer beyond ±(2**53 - 1)) leaves it unsigned.
    """
    if signing_key is None:
        return pause
    written: dict[str, Any] = orjson.loads(orjson.dumps(pause))
    try:
        return {**written, "signature": sign(written, signing_key)}
    except SigningError:
        return written


def outputs_for(
    decision: Decision, *, now_ms: int, signing_key: bytes | None
) -> tuple[list[OutputRecord], RollbackCommand | None]:
    """Every record a decision produces, and the rollback command among them if any."""
    key = decision.service.encode()
    records: list[OutputRecord] = []
    command = command_from_decision(decision, issued_at_ms=now_ms, signing_key=signing_key)
    if command is not None:
        records.append(OutputRecord("command", key, command.model_dump_json().encode()))
    elif decision.action == "pause" and decision.deploy is not None and not decision.dry_run:
        pause = {
            "kind": "pause_command",
            "version": 1,
            "command_id": _stable_id("ps-", decision.deploy.deploy_id, "pause"),
            "deploy_id": decision.deploy.deploy_id,
            "service": decision.service,
            "environment": decision.environment,
            "regions": list(decision.regions),
            "rule": decision.rule,
            "reason": decision.reason,
            "evidence": decision.evidence,
            "issued_at": format_time(now_ms),
        }
        records.append(OutputRecord("command", key, orjson.dumps(_signed(pause, signing_key))))
    audit = audit_for(decision, now_ms=now_ms, command=command)
    records.append(OutputRecord("audit", key, audit.model_dump_json().encode()))
    entry = notification_entry(decision, now_ms=now_ms, command=command)
    records.append(OutputRecord("notification", key, orjson.dumps(entry)))
    return records, command

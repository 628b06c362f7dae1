"""Outbox entries as the notifier reads them: a ``Notice`` per entry, validated at the edge.

Two entry kinds reach the notifier on the notification topic:

- ``notification`` — written by ``guardian.actions.outputs.notification_entry``
  for every decision (firing or resolved);
- ``deploy_confirmation`` — built by ``confirmation_entry`` when an executor
  confirms a deploy ``rolled_back`` (or ``failed``); it resolves every open
  incident of that deploy.

An entry that is not one of these raises ``DecodeError``; the notifier logs,
counts and skips it (never blocks the outbox on bad input).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from guardian.engine.decision import DeployInfo
from guardian.errors import DecodeError
from guardian.wire.records import format_time

NoticeKind = Literal["decision", "confirmation"]


@dataclass(frozen=True, slots=True)
class Notice:
    """What one outbox entry says, flattened for grouping and rendering."""

    notification_id: str
    kind: NoticeKind
    at_ms: int
    rule: str
    action: str
    severity: str
    state: str
    dry_run: bool
    service: str
    environment: str
    deploy_id: str | None
    regions: tuple[str, ...]
    reason: str
    evidence: dict[str, Any]
    version: str | None = None
    previous_version: str | None = None
    strategy: str | None = None
    component: str | None = None
    command: dict[str, Any] | None = None
    confirmation: str | None = None

    @property
    def incident_key(self) -> str:
        """Grouping key: one incident per deploy and rule (per service and rule without deploy)."""
        scope = self.deploy_id or f"{self.service}/{self.environment}"
        return f"{scope}|{self.rule}"

    @property
    def command_id(self) -> str | None:
        """The rollback command's id when the decision issued one."""
        value = self.command.get("command_id") if self.command else None
        return value if isinstance(value, str) else None


def parse_time_ms(value: object) -> int:
    """RFC 3339 string or epoch milliseconds → epoch milliseconds."""
    if isinstance(value, bool):
        raise DecodeError("timestamp must be a string or a number")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value).timestamp() * 1000)
        except ValueError:
            raise DecodeError(f"bad timestamp {value!r}") from None
    raise DecodeError("timestamp must be a string or a number")


def _str(data: dict[str, Any], key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise DecodeError(f"{key} must be a string")
    return value


def _opt_str(data: dict[str, Any] | None, key: str) -> str | None:
    value = (data or {}).get(key)
    return value if isinstance(value, str) else None


def parse_entry(entry: object) -> Notice:
    """Validate one outbox entry; raise ``DecodeError`` when it is not usable."""
    if not isinstance(entry, dict):
        raise DecodeError("an outbox entry must be a JSON object")
    kind = entry.get("kind")
    deploy = entry.get("deploy")
    if deploy is not None and not isinstance(deploy, dict):
        raise DecodeError("deploy must be an object or null")
    if kind == "deploy_confirmation":
        status = _str(entry, "status")
        if deploy is None:
            raise DecodeError("a deploy confirmation needs its deploy")
        return Notice(
            notification_id=_str(entry, "notification_id"),
            kind="confirmation",
            at_ms=parse_time_ms(entry.get("at")),
            rule="*",
            action="rollback",
            severity="info",
            state="resolved",
            dry_run=False,
            service=_str(entry, "service"),
            environment=_str(entry, "environment"),
            deploy_id=_str(deploy, "deploy_id"),
            regions=tuple(str(r) for r in deploy.get("regions") or ()),
            reason=f"deploy {status}",
            evidence={},
            version=_opt_str(deploy, "version"),
            previous_version=_opt_str(deploy, "previous_version"),
            strategy=_opt_str(deploy, "strategy"),
            component=_opt_str(deploy, "component"),
            confirmation=status,
        )
    if kind != "notification":
        raise DecodeError(f"unknown outbox entry kind {kind!r}")
    decision = entry.get("decision")
    if not isinstance(decision, dict):
        raise DecodeError("decision must be an object")
    command = entry.get("command")
    evidence = decision.get("evidence") or {}
    if not isinstance(evidence, dict) or (command is not None and not isinstance(command, dict)):
        raise DecodeError("evidence and command must be objects")
    return Notice(
        notification_id=_str(entry, "notification_id"),
        kind="decision",
        at_ms=parse_time_ms(decision.get("at")),
        rule=_str(decision, "rule"),
        action=_str(decision, "action"),
        severity=_str(decision, "severity"),
        state=_str(decision, "state", "firing"),
        dry_run=bool(decision.get("dry_run", False)),
        service=_str(decision, "service"),
        environment=_str(decision, "environment"),
        deploy_id=_opt_str(decision, "deploy_id"),
        regions=tuple(str(r) for r in decision.get("regions") or ()),
        reason=_str(decision, "reason", ""),
        evidence=evidence,
        version=_opt_str(deploy, "version"),
        previous_version=_opt_str(deploy, "previous_version"),
        strategy=_opt_str(deploy, "strategy"),
        component=_opt_str(deploy, "component"),
        command=command,
    )


def confirmation_entry(
    deploy: DeployInfo, *, status: Literal["rolled_back", "failed"], at_ms: int, now_ms: int
) -> dict[str, Any]:
    """The outbox entry that closes a deploy's incidents when an executor confirms it."""
    digest = hashlib.sha256(f"{deploy.deploy_id}|{status}|{at_ms}".encode()).hexdigest()[:24]
    return {
        "kind": "deploy_confirmation",
        "notification_id": "nc-" + digest,
        "created_at": format_time(now_ms),
        "at": format_time(at_ms),
        "status": status,
        "service": deploy.service,
        "environment": deploy.environment,
        "deploy": {
            "deploy_id": deploy.deploy_id,
            "version": deploy.version,
            "previous_version": deploy.previous_version,
            "strategy": deploy.strategy,
            "component": deploy.component,
            "regions": list(deploy.regions),
        },
    }

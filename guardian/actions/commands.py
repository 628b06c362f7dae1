"""Rollback commands shaped by the deploy: procedure by component, traffic by strategy.

``command_id`` is a hash of (deploy, trigger[, request]): a redelivered batch,
a restart or a second replica produces the same id for the same rollback, so
executors dedupe on it and a deploy is never rolled back twice by mistake.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from guardian.engine.decision import Decision, DeployInfo
from guardian.wire.records import (
    PROCEDURE_BY_COMPONENT,
    Evidence,
    RollbackCommand,
    Traffic,
    Trigger,
    format_time,
)
from guardian.wire.signing import sign

UNKNOWN_PREVIOUS = (
    "; the version it replaced is unknown (no earlier deploy or metric named one): "
    "roll back to the last version known good"
)


def command_id(deploy_id: str, trigger: Trigger, request_id: str | None = None) -> str:
    """Deterministic id of the one rollback of a deploy for a trigger."""
    material = f"{deploy_id}|{trigger}|{request_id or ''}".encode()
    return "rb-" + hashlib.sha256(material).hexdigest()[:24]


def traffic_for(deploy: DeployInfo, regions: tuple[str, ...]) -> Traffic:
    """What happens to traffic, by strategy (DESIGN.md, rollback commands)."""
    if deploy.strategy == "blue_green":
        return Traffic(action="switch_back", instant=True)
    if deploy.strategy == "canary":
        return Traffic(action="set_weight", weight=0, instant=True)
    if deploy.strategy == "progressive":
        return Traffic(action="halt_and_revert", regions=list(regions or deploy.regions))
    return Traffic(action="redeploy_previous", regions=list(regions or deploy.regions) or None)


def build_command(
    deploy: DeployInfo,
    *,
    trigger: Trigger,
    reason: str,
    issued_at_ms: int,
    rule: str | None = None,
    evidence: dict[str, Any] | None = None,
    regions: tuple[str, ...] = (),
    related: tuple[dict[str, Any], ...] = (),
    requested_by: str | None = None,
    approved_by: str | None = None,
    request_id: str | None = None,
    signing_key: bytes | None = None,
) -> RollbackCommand:
    """The rollback command for a deploy, signed when a key is given.

    Raises ``SigningError`` if the evidence holds an integer beyond ±(2**53 - 1),
    which RFC 8785 (and every JavaScript executor) cannot represent exactly.
    """
    procedure = PROCEDURE_BY_COMPONENT[deploy.component]
    command = RollbackCommand(
        command_id=command_id(deploy.deploy_id, trigger, request_id),
        deploy_id=deploy.deploy_id,
        service=deploy.service,
        environment=deploy.environment,
        regions=list(regions or deploy.regions),
        from_version=deploy.version,
        to_version=deploy.previous_version,
        strategy=deploy.strategy,
        component=deploy.component,
        procedure=procedure,
        recovery_point=(
            format_time(deploy.started_at_ms) if procedure == "point_in_time_recovery" else None
        ),
        traffic=traffic_for(deploy, regions),
        trigger=trigger,
        rule=rule,
        # Never a guess: with to_version null, the executor picks what to go back to.
        reason=reason if deploy.previous_version is not None else reason + UNKNOWN_PREVIOUS,
        evidence=Evidence(**(evidence or {})),
        related=list(related),
        requested_by=requested_by,
        approved_by=approved_by,
        issued_at=format_time(issued_at_ms),
    )
    if signing_key is None:
        return command
    # Sign the values a verifier parses from the JSON the guardian writes:
    # pydantic writes a non-finite float as null, model_dump would keep it.
    payload = orjson.loads(command.model_dump_json())
    return command.model_copy(update={"signature": sign(payload, signing_key)})


def command_from_decision(
    decision: Decision, *, issued_at_ms: int, signing_key: bytes | None
) -> RollbackCommand | None:
    """The automatic rollback command for a rollback decision, or None if it has no deploy."""
    if decision.deploy is None or decision.action != "rollback" or decision.dry_run:
        return None
    return build_command(
        decision.deploy,
        trigger="automatic",
        reason=decision.reason,
        issued_at_ms=issued_at_ms,
        rule=decision.rule,
        evidence=decision.evidence,
        regions=decision.regions,
        related=decision.related,
        signing_key=signing_key,
    )

"""The commands the executor acts on, decoded from the command topic.

Two kinds arrive there: ``rollback_command`` (``guardian.wire.records``) and
``pause_command`` (``guardian.actions.outputs``, no versions), both signed when
the guardian has a key. Unknown fields are ignored, as everywhere in the v1
contract (a newer guardian may add some; they are still covered by the
signature). Anything else on the topic is not for the executor and is
skipped. ``decode_command`` keeps the parsed JSON beside the typed command:
the signature is checked over the values as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from guardian.errors import DecodeError
from guardian.wire.records import RollbackCommand

Action = Literal["rollback", "pause"]


class PauseCommand(BaseModel):
    """A ``pause_command`` as the guardian writes it (unknown fields ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["pause_command"]
    command_id: str
    deploy_id: str
    service: str
    environment: str
    regions: list[str] = []
    rule: str | None = None
    reason: str = ""
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """What the executor needs of a command, whichever kind it is."""

    action: Action
    command_id: str
    deploy_id: str
    service: str
    environment: str
    regions: tuple[str, ...]
    from_version: str | None
    to_version: str | None
    strategy: str
    component: str
    reason: str
    rule: str | None
    signature: str | None
    payload: dict[str, Any]  # the JSON as parsed: what the signature covers


def decode_command(value: bytes) -> Command | None:
    """The command in a record; None for a record of another kind; DecodeError if invalid."""
    try:
        payload = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise DecodeError("a command must be a JSON object")
    kind = payload.get("kind")
    try:
        if kind == "rollback_command":
            # Fields a newer guardian adds are ignored (they are still signed, in payload).
            known = {k: v for k, v in payload.items() if k in RollbackCommand.model_fields}
            rollback = RollbackCommand.model_validate(known)
            return Command(
                action="rollback",
                command_id=rollback.command_id,
                deploy_id=rollback.deploy_id,
                service=rollback.service,
                environment=rollback.environment,
                regions=tuple(rollback.regions),
                from_version=rollback.from_version,
                to_version=rollback.to_version,
                strategy=rollback.strategy,
                component=rollback.component,
                reason=rollback.reason,
                rule=rollback.rule,
                signature=rollback.signature,
                payload=payload,
            )
        if kind == "pause_command":
            pause = PauseCommand.model_validate(payload)
            return Command(
                action="pause",
                command_id=pause.command_id,
                deploy_id=pause.deploy_id,
                service=pause.service,
                environment=pause.environment,
                regions=tuple(pause.regions),
                from_version=None,
                to_version=None,
                strategy="rolling",
                component="application",
                reason=pause.reason,
                rule=pause.rule,
                signature=pause.signature,
                payload=payload,
            )
    except ValidationError as exc:
        raise DecodeError(
            f"invalid {kind}: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}"
        ) from None
    return None

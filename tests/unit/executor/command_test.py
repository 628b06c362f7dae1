"""Decoding the command topic: rollback and pause commands, other records, invalid ones."""

from __future__ import annotations

import orjson
import pytest

from guardian.actions.outputs import outputs_for
from guardian.errors import DecodeError
from guardian.executor.command import decode_command
from guardian.wire.signing import check
from tests.unit.actions.commands_test import _decision

ROLLBACK = {
    "kind": "rollback_command",
    "command_id": "rb-1",
    "deploy_id": "d-1",
    "service": "checkout",
    "environment": "production",
    "regions": ["us-east"],
    "from_version": "2.4.1",
    "to_version": "2.4.0",
    "strategy": "canary",
    "component": "application",
    "procedure": "container_version_switch",
    "traffic": {"action": "set_weight", "weight": 0, "instant": True},
    "trigger": "automatic",
    "rule": "error-rate-critical",
    "reason": "bad",
    "evidence": {"observed": 200.0},
    "issued_at": "2026-12-02T00:00:00.000Z",
    "signature": "hmac-sha256+jcs:00",
}


def test_a_rollback_command_keeps_its_parsed_json_for_the_signature() -> None:
    """The typed fields come from the wire model; the payload is the JSON as written."""
    command = decode_command(orjson.dumps(ROLLBACK))
    assert command is not None
    assert (command.action, command.from_version, command.to_version) == (
        "rollback",
        "2.4.1",
        "2.4.0",
    )
    assert command.regions == ("us-east",)
    assert command.payload == ROLLBACK


def test_a_pause_command_has_no_versions() -> None:
    """Pause commands carry no from/to version; unknown fields are ignored."""
    pause = {
        "kind": "pause_command",
        "version": 1,
        "command_id": "ps-1",
        "deploy_id": "d-1",
        "service": "checkout",
        "environment": "production",
        "regions": [],
        "evidence": {},
    }
    command = decode_command(orjson.dumps(pause))
    assert command is not None
    assert (command.action, command.from_version, command.signature) == ("pause", None, None)


def test_other_records_are_not_for_the_executor() -> None:
    """A record of another kind is skipped, not an error."""
    assert decode_command(b'{"kind": "audit"}') is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\x00", "not valid JSON"),
        (b"[1]", "JSON object"),
        (orjson.dumps({**ROLLBACK, "from_version": 3}), "invalid rollback_command"),
        (orjson.dumps({"kind": "pause_command"}), "invalid pause_command"),
    ],
)
def test_invalid_commands_are_decode_errors(value: bytes, reason: str) -> None:
    """Bad JSON or a command missing fields says why."""
    with pytest.raises(DecodeError, match=reason):
        decode_command(value)


def test_the_guardians_pause_commands_are_signed_for_the_executor() -> None:
    """With a signing key, a pause command verifies like a rollback command does."""
    decision = _decision(action="pause", evidence={"observed": 200.0, "huge": 2**60})
    records, _ = outputs_for(_decision(action="pause"), now_ms=1795478461000, signing_key=b"k")
    command = decode_command(records[0].value)
    assert command is not None
    assert command.signature is not None
    assert check(command.payload, b"k").ok
    unsigned, _ = outputs_for(decision, now_ms=1795478461000, signing_key=b"k")
    assert "signature" not in orjson.loads(unsigned[0].value), "JCS cannot sign 2**60"
    plain, _ = outputs_for(_decision(action="pause"), now_ms=1795478461000, signing_key=None)
    assert "signature" not in orjson.loads(plain[0].value)


def test_fields_a_newer_guardian_adds_are_ignored_but_stay_signed() -> None:
    """Forward compatible: an unknown field does not make the command invalid."""
    command = decode_command(orjson.dumps({**ROLLBACK, "added_later": {"x": 1}}))
    assert command is not None
    assert command.payload["added_later"] == {"x": 1}

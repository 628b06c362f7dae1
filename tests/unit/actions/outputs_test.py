"""Decisions become the right records on the right topics."""

from __future__ import annotations

import dataclasses

import orjson

from guardian.actions.outputs import outputs_for
from tests.unit.actions.commands_test import _decision


def _roles(decision_changes: dict[str, object]) -> list[str]:
    records, _ = outputs_for(_decision(**decision_changes), now_ms=1795478461000, signing_key=None)
    return [r.role for r in records]


def test_rollback_writes_command_audit_and_notification() -> None:
    """A rollback decision produces a command, an audit record and an outbox entry."""
    records, command = outputs_for(_decision(), now_ms=1795478461000, signing_key=None)
    assert [r.role for r in records] == ["command", "audit", "notification"]
    assert command is not None
    audit = orjson.loads(records[1].value)
    assert audit["command_id"] == command.command_id
    assert audit["details"]["decision"]["rule"] == "error-rate-critical"
    entry = orjson.loads(records[2].value)
    assert entry["command"]["command_id"] == command.command_id
    assert entry["deploy"]["previous_version"] == "2.4.0"
    assert all(r.key == b"checkout" for r in records)


def test_pause_writes_a_pause_command() -> None:
    """A pause decision writes a pause command that names the deploy."""
    records, command = outputs_for(
        _decision(action="pause"), now_ms=1795478461000, signing_key=None
    )
    assert command is None
    pause = orjson.loads(records[0].value)
    assert pause["kind"] == "pause_command"
    assert pause["deploy_id"] == "d-8812"


def test_notify_and_dry_run_write_no_command() -> None:
    """Notify-only and dry-run decisions are audited and notified but command nothing."""
    assert _roles({"action": "notify"}) == ["audit", "notification"]
    assert _roles({"dry_run": True}) == ["audit", "notification"]


def test_audit_ids_are_stable_for_the_same_decision() -> None:
    """A redelivered decision yields the same audit and notification ids."""
    first, _ = outputs_for(_decision(), now_ms=1, signing_key=None)
    again, _ = outputs_for(_decision(), now_ms=2, signing_key=None)
    later, _ = outputs_for(
        dataclasses.replace(_decision(), at_ms=1795478470000), now_ms=2, signing_key=None
    )
    ids = [orjson.loads(r.value).get("audit_id") for r in (first[1], again[1], later[1])]
    assert ids[0] == ids[1] != ids[2]

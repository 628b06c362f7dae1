"""What a manual step writes: the manual command, audit record and notification entry."""

from __future__ import annotations

import orjson
import pytest

from guardian.manual.policy import ManualPolicy
from guardian.manual.records import manual_command, step_outputs
from guardian.manual.requests import approve, deny, open_request
from guardian.manual.tokens import Identity
from guardian.wire.signing import verify
from tests.support.manual import make_deploy

ALICE = Identity("alice", frozenset({"SRE"}))
BOB = Identity("bob", frozenset({"SRE"}))


def test_approved_step_writes_signed_manual_command_audit_and_notification() -> None:
    """An approval yields a signed manual command, a manual_approved audit and a rollback notice."""
    req = open_request(
        request_id="mr-1",
        deploy=make_deploy(strategy="canary"),
        reason="5xx spike",
        who=ALICE,
        policy=ManualPolicy(),
        now_ms=1_000,
    )
    command = manual_command(req, approved_by="bob", now_ms=2_000, signing_key=b"k")
    done = approve(req, BOB, ManualPolicy(), 2_000, command.command_id)
    outputs = step_outputs(done, "approved", now_ms=2_000, actor="bob", command=command)
    assert [o.role for o in outputs] == ["command", "audit", "notification"]
    assert {o.key for o in outputs} == {b"checkout"}
    cmd = orjson.loads(outputs[0].value)
    assert verify(cmd, b"k")
    assert (cmd["trigger"], cmd["requested_by"], cmd["approved_by"], cmd["reason"]) == (
        "manual",
        "alice",
        "bob",
        "5xx spike",
    )
    assert cmd["traffic"] == {"action": "set_weight", "weight": 0, "regions": None, "instant": True}
    audit = orjson.loads(outputs[1].value)
    assert (audit["event"], audit["actor"], audit["command_id"]) == (
        "manual_approved",
        "bob",
        cmd["command_id"],
    )
    note = orjson.loads(outputs[2].value)
    assert note["kind"] == "notification"
    assert note["decision"]["action"] == "rollback"
    assert note["decision"]["rule"] == "manual-rollback"
    assert note["decision"]["state"] == "firing"
    assert note["command"]["command_id"] == cmd["command_id"]
    assert note["deploy"]["deploy_id"] == "d-1"


@pytest.mark.parametrize(
    ("step", "action", "state", "words"),
    [
        ("requested", "notify", "firing", "alice requests a rollback"),
        ("denied", "notify", "resolved", "bob denied"),
        ("expired", "notify", "resolved", "expired"),
    ],
)
def test_other_steps_write_audit_and_notification_only(
    step: str, action: str, state: str, words: str
) -> None:
    """Requests, denials and expiries write no command; their notices say what happened."""
    req = open_request(
        request_id="mr-1",
        deploy=make_deploy(),
        reason="r",
        who=ALICE,
        policy=ManualPolicy(),
        now_ms=1_000,
    )
    if step == "denied":
        req = deny(req, BOB, ManualPolicy(), 2_000, "looks fine")
    outputs = step_outputs(req, step, now_ms=2_000, actor="x")  # type: ignore[arg-type]
    assert [o.role for o in outputs] == ["audit", "notification"]
    note = orjson.loads(outputs[1].value)
    assert (note["decision"]["action"], note["decision"]["state"]) == (action, state)
    assert words in note["decision"]["reason"]
    assert note["command"] is None
    assert orjson.loads(outputs[0].value)["event"] == f"manual_{step}"

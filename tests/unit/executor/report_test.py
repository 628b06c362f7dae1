"""The reports: the v1 deploy event the guardian reads back, the audit record, the outcome."""

from __future__ import annotations

import orjson

from guardian.executor.apply import TargetOutcome
from guardian.executor.command import Command
from guardian.executor.report import CommandOutcome, audit_record, deploy_event
from guardian.wire.events import DeployEvent, decode_event


def _command(action: str = "rollback", strategy: str = "canary") -> Command:
    return Command(
        action="pause" if action == "pause" else "rollback",
        command_id="rb-1",
        deploy_id="d-1",
        service="checkout",
        environment="production",
        regions=("us-east",),
        from_version="2.4.1",
        to_version="2.4.0",
        strategy=strategy,
        component="application",
        reason="bad",
        rule="r",
        signature=None,
        payload={},
    )


def _target(status: str, reason: str = "ok", name: str = "a") -> TargetOutcome:
    return TargetOutcome(name, "Deployment", status, reason)  # type: ignore[arg-type]


def test_every_target_must_succeed_for_the_command_to() -> None:
    """One failure fails the command with its reason; an interrupted one holds the outcome back."""
    assert (
        CommandOutcome.of((_target("rolled_back"), _target("rolled_back", name="b"))).status
        == "rolled_back"
    )
    mixed = CommandOutcome.of((_target("rolled_back"), _target("failed", "precondition", "b")))
    assert (mixed.status, mixed.reason) == ("failed", "b: precondition")
    assert CommandOutcome.of((_target("interrupted"), _target("failed"))).status == "interrupted"
    assert CommandOutcome.of(()).status == "failed"
    assert mixed.details()["targets"][1]["status"] == "failed"


def test_the_rolled_back_event_decodes_as_the_deploys_closing_step() -> None:
    """version = the deploy's version, previous_version = the one running again."""
    outcome = CommandOutcome.of((_target("rolled_back"),))
    event = deploy_event(_command(strategy="surprise"), outcome, 1_795_478_400_000)
    assert event is not None
    decoded = decode_event(orjson.dumps(event))
    assert isinstance(decoded, DeployEvent)
    assert (decoded.type, decoded.version, decoded.previous_version) == (
        "rolled_back",
        "2.4.1",
        "2.4.0",
    )
    assert decoded.strategy == "rolling"  # an unknown strategy is not a decode error downstream


def test_pauses_and_dry_runs_report_no_deploy_event() -> None:
    """A paused deploy is still live; a dry run reports nothing."""
    paused = CommandOutcome.of((_target("paused"),))
    assert deploy_event(_command("pause"), paused, 0) is None
    assert deploy_event(_command(), CommandOutcome.of((_target("dry_run"),)), 0) is None


def test_an_audit_record_without_a_command_still_names_the_command_id() -> None:
    """A refused record that did not decode is audited with what is known."""
    record = audit_record(
        "executor_refused", 1_795_478_400_000, command=None, command_id="rb-x", details={}
    )
    assert (record.command_id, record.service, record.actor) == ("rb-x", None, "guardian-executor")
    assert record.audit_id.startswith("ex-")

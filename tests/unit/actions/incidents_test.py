"""Incident CDEvents of rollbacks, the deploy a confirmation closes, unknown previous versions."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from guardian.actions.commands import UNKNOWN_PREVIOUS, build_command, command_from_decision
from guardian.actions.incidents import DETECTED, RESOLVED, IncidentEvents, confirmed_deploy
from guardian.engine.decision import DeployInfo
from guardian.wire.cdevents import UnusedEventError, decode_record
from guardian.wire.events import LIVE_DEPLOY, DeployEvent, EventTime
from tests.unit.actions.commands_test import DEPLOY, _decision

AT = 1795478460000


def _step(deploy_id: str, type_: str = "rolled_back") -> DeployEvent:
    return DeployEvent(
        type=type_,  # type: ignore[arg-type]
        deploy_id=deploy_id,
        service="checkout",
        environment="production",
        version="2.4.0",
        timestamp=EventTime(AT),
    )


def test_detected_and_resolved_name_one_incident() -> None:
    """Both events are CloudEvents (structured) of CDEvents 0.3.0 about the same incident."""
    events = IncidentEvents("/guardian/g1")
    decision = _decision()
    command = command_from_decision(decision, issued_at_ms=AT, signing_key=None)
    assert command is not None
    detected = events.detected(decision, command)
    resolved = events.resolved(
        dataclasses.replace(DEPLOY, rollback_rule="error-rate-critical"), "rolled_back", AT + 1
    )
    assert detected.role == resolved.role == "incident"
    assert detected.key == b"checkout"
    assert dict(detected.headers)["content-type"].startswith(b"application/cloudevents+json")
    first, second = orjson.loads(detected.value), orjson.loads(resolved.value)
    assert (first["type"], second["type"]) == (DETECTED, RESOLVED)
    assert first["subject"] == second["subject"] == first["data"]["subject"]["id"]
    assert first["id"] == first["data"]["context"]["id"] != second["id"]
    content = first["data"]["subject"]["content"]
    assert content["service"] == {"id": "checkout"}
    assert content["environment"] == {"id": "production"}
    assert content["description"].startswith("error-rate-critical: error rate 8.3%")
    custom = first["data"]["customData"]
    assert custom["command_id"] == command.command_id
    assert (custom["from_version"], custom["to_version"]) == ("2.4.1", "2.4.0")
    assert second["data"]["customData"]["status"] == "rolled_back"
    # The same decision again (a redelivered batch) is the same event.
    assert events.detected(decision, command).value == detected.value


def test_incident_cdevents_are_skipped_by_the_guardians_own_decoder() -> None:
    """Written where the guardian reads (one topic for all CDEvents), they are not deploys."""
    decision = _decision()
    command = command_from_decision(decision, issued_at_ms=AT, signing_key=None)
    assert command is not None
    record = IncidentEvents("/g").detected(decision, command)
    with pytest.raises(UnusedEventError):
        decode_record(record.value, list(record.headers))


def _known(**changes: object) -> DeployInfo:
    return dataclasses.replace(DEPLOY, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "event", "known", "expected"),
    [
        (
            "live step, live deploy closed",
            _step(LIVE_DEPLOY),
            _known(status="rolled_back"),
            "d-8812",
        ),
        ("live step, nothing closed", _step(LIVE_DEPLOY), _known(status="active"), None),
        ("live step, no deploy", _step(LIVE_DEPLOY), None, None),
        ("its own id", _step("d-8812"), _known(status="rolled_back"), "d-8812"),
        ("an older deploy", _step("d-7000"), _known(), "d-7000"),
    ],
)
def test_confirmed_deploy(
    name: str, event: DeployEvent, known: DeployInfo | None, expected: str | None
) -> None:
    """A confirmation closes the engine's deploy when it is the one, else the event's own."""
    deploy = confirmed_deploy(event, lambda _s, _e: known)
    assert (deploy.deploy_id if deploy else None) == expected, name
    if deploy is not None:
        assert deploy.status == "rolled_back"


def test_confirmed_deploy_without_the_engine_is_the_events() -> None:
    """Without a lookup (tests, tools) the deploy is what the event says."""
    deploy = confirmed_deploy(_step("d-1", "failed"), None)
    assert deploy is not None
    assert (deploy.deploy_id, deploy.status, deploy.version) == ("d-1", "failed", "2.4.0")


def test_a_command_with_an_unknown_previous_version_says_so() -> None:
    """to_version stays null and the reason says the version is unknown, never a guess."""
    unknown = build_command(
        _known(previous_version=None), trigger="automatic", reason="r", issued_at_ms=AT
    )
    known = build_command(DEPLOY, trigger="automatic", reason="r", issued_at_ms=AT)
    assert (unknown.to_version, unknown.reason) == (None, "r" + UNKNOWN_PREVIOUS)
    assert (known.to_version, known.reason) == ("2.4.0", "r")

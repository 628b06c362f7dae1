"""Rollback commands: shaped by the deploy, deterministic, signed."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from guardian.actions.commands import build_command, command_from_decision, command_id
from guardian.engine.decision import Decision, DeployInfo
from guardian.wire.signing import SigningError, verify

DEPLOY = DeployInfo(
    deploy_id="d-8812",
    service="checkout",
    environment="production",
    version="2.4.1",
    previous_version="2.4.0",
    strategy="canary",
    component="application",
    regions=("us-east",),
    started_at_ms=1795478400000,
)


def _decision(**changes: object) -> Decision:
    base = Decision(
        at_ms=1795478460000,
        rule="error-rate-critical",
        action="rollback",
        severity="critical",
        service="checkout",
        environment="production",
        deploy=DEPLOY,
        regions=("us-east",),
        reason="error rate 8.3% over 2m > 5%",
        evidence={"metric": "error_rate", "observed": 0.083, "threshold": 0.05, "samples": 41},
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("component", "procedure"),
    [
        ("application", "container_version_switch"),
        ("configuration", "version_rollback"),
        ("database", "point_in_time_recovery"),
    ],
)
def test_procedure_follows_component(component: str, procedure: str) -> None:
    """The procedure is chosen by the deploy's component."""
    deploy = dataclasses.replace(DEPLOY, component=component)
    command = build_command(deploy, trigger="automatic", reason="r", issued_at_ms=1)
    assert command.procedure == procedure
    expected_point = "2026-11-24T00:00:00.000Z" if component == "database" else None
    assert command.recovery_point == expected_point


@pytest.mark.parametrize(
    ("strategy", "action", "weight", "regions"),
    [
        ("blue_green", "switch_back", None, None),
        ("canary", "set_weight", 0, None),
        ("progressive", "halt_and_revert", None, ["us-east", "eu-west"]),
        ("rolling", "redeploy_previous", None, ["us-east", "eu-west"]),
    ],
)
def test_traffic_follows_strategy(
    strategy: str, action: str, weight: int | None, regions: list[str] | None
) -> None:
    """Traffic handling is chosen by the strategy; progressive reverts every reached region."""
    deploy = dataclasses.replace(DEPLOY, strategy=strategy, regions=("us-east", "eu-west"))
    command = build_command(deploy, trigger="automatic", reason="r", issued_at_ms=1)
    assert command.traffic.action == action
    assert command.traffic.weight == weight
    assert command.traffic.regions == regions


def test_command_id_is_deterministic_per_deploy_and_trigger() -> None:
    """The same deploy and trigger always give the same id; another trigger another id."""
    assert command_id("d-1", "automatic") == command_id("d-1", "automatic")
    assert command_id("d-1", "automatic") != command_id("d-2", "automatic")
    assert command_id("d-1", "automatic") != command_id("d-1", "manual", "req-1")


def test_command_from_decision_carries_rule_evidence_and_versions() -> None:
    """An automatic command names the rule, the evidence and rolls back to the previous version."""
    command = command_from_decision(_decision(), issued_at_ms=1795478461000, signing_key=None)
    assert command is not None
    assert command.trigger == "automatic"
    assert command.rule == "error-rate-critical"
    assert (command.from_version, command.to_version) == ("2.4.1", "2.4.0")
    assert command.evidence.observed == 0.083
    assert command.issued_at == "2026-11-24T00:01:01.000Z"
    assert command.signature is None


@pytest.mark.parametrize(
    "changes", [{"dry_run": True}, {"action": "notify"}, {"deploy": None}, {"action": "pause"}]
)
def test_no_command_for_dry_runs_notifications_or_missing_deploys(
    changes: dict[str, object],
) -> None:
    """Dry runs, non-rollback actions and decisions without a deploy produce no command."""
    assert command_from_decision(_decision(**changes), issued_at_ms=1, signing_key=None) is None


def test_signed_command_verifies() -> None:
    """With a key, the command carries an hmac-sha256+jcs signature executors can verify."""
    command = command_from_decision(_decision(), issued_at_ms=1, signing_key=b"secret")
    assert command is not None
    assert command.signature is not None
    assert command.signature.startswith("hmac-sha256+jcs:")
    payload = orjson.loads(command.model_dump_json())
    assert verify(payload, b"secret")
    assert not verify({**payload, "to_version": "1.0.0"}, b"secret")


def test_signature_covers_what_is_written_even_for_non_finite_evidence() -> None:
    """An infinite value is written as null; the signature is over that, so it verifies."""
    evidence = {"metric": "latency", "observed": float("inf"), "threshold": 200.0}
    decision = _decision(evidence=evidence)
    command = command_from_decision(decision, issued_at_ms=1, signing_key=b"secret")
    assert command is not None
    written = orjson.loads(command.model_dump_json())
    assert written["evidence"]["observed"] is None
    assert verify(written, b"secret")


def test_evidence_integers_beyond_i_json_cannot_be_signed() -> None:
    """An integer no JavaScript executor reads exactly is a SigningError, never a bad signature."""
    decision = _decision(evidence={"samples": 2**53})
    with pytest.raises(SigningError):
        command_from_decision(decision, issued_at_ms=1, signing_key=b"secret")

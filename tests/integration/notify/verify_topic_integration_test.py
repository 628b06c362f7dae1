"""``guardian verify --topic`` checks every command on a real topic."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from typer.testing import CliRunner

from guardian.actions.commands import build_command
from guardian.cli.main import app
from tests.support.kafka import produce, unique
from tests.support.manual import make_deploy

pytestmark = pytest.mark.kafka


def test_verify_reads_a_topic_and_flags_tampered_commands(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Good signatures print ok, a changed command prints BAD, and the exit code is 1."""
    topic = unique("verify")
    good = build_command(
        make_deploy("d-good"),
        trigger="automatic",
        reason="r",
        issued_at_ms=1,
        signing_key=b"key",
    ).model_dump(mode="json")
    tampered = {
        **build_command(
            make_deploy("d-evil"),
            trigger="automatic",
            reason="r",
            issued_at_ms=1,
            signing_key=b"key",
        ).model_dump(mode="json"),
        "to_version": "0.0.1",
    }
    asyncio.run(
        produce(
            kafka_bootstrap, topic, [(b"s", orjson.dumps(good)), (b"s", orjson.dumps(tampered))]
        )
    )
    monkeypatch.setenv("GUARDIAN_SIGNING_KEY", "key")
    result = CliRunner().invoke(
        app, ["verify", "--topic", topic, "--bootstrap-servers", kafka_bootstrap]
    )
    assert result.exit_code == 1
    assert f"ok  {good['command_id']}" in result.stdout
    assert f"BAD {tampered['command_id']}: signature mismatch" in result.stdout


def test_verify_needs_a_key_and_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a key, or a topic without servers, verify explains and exits 2."""
    monkeypatch.delenv("GUARDIAN_SIGNING_KEY", raising=False)
    assert CliRunner().invoke(app, ["verify"]).exit_code == 2
    monkeypatch.setenv("GUARDIAN_SIGNING_KEY", "key")
    assert CliRunner().invoke(app, ["verify", "--topic", "t"]).exit_code == 2

"""``guardian subscriptions check`` and ``guardian verify`` from stdin."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from guardian.actions.commands import build_command
from guardian.cli.notify_cmd import register
from tests.support.notices import T0, deploy


@pytest.fixture
def app() -> typer.Typer:
    """A CLI with only the notify commands."""
    cli = typer.Typer()
    register(cli)
    return cli


def test_subscriptions_check_lists_problems_and_exits_1(app: typer.Typer, tmp_path: Path) -> None:
    """Every problem is printed with file:line:column; a good file says OK."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("subscriptions:\n  - name: a\n    email: [nope]\n")
    result = CliRunner().invoke(app, ["subscriptions", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:3:5: subscriptions[0].email: 'nope' is not an email address" in result.output
    good = tmp_path / "good.yaml"
    good.write_text("subscriptions:\n  - name: a\n    slack: '#x'\n")
    result = CliRunner().invoke(app, ["subscriptions", "check", str(good)])
    assert (result.exit_code, "1 subscription(s) OK" in result.output) == (0, True)


def test_verify_reports_ok_and_bad_per_command(app: typer.Typer) -> None:
    """Signed commands are ok; tampered, unsigned or garbled lines are BAD and exit 1."""
    key = b"k3y"
    signed = build_command(
        deploy(), trigger="automatic", reason="r", issued_at_ms=T0, signing_key=key
    )
    good = signed.model_dump(mode="json")
    tampered = {**good, "to_version": "0.0.1"}
    unsigned = {**good, "signature": None, "command_id": "rb-unsigned"}
    lines = [orjson.dumps(x).decode() for x in (good, {"kind": "audit"}, tampered, unsigned)]
    stdin = "\n".join([*lines, "", "{oops"]) + "\n"
    env = {"GUARDIAN_SIGNING_KEY": "k3y"}
    result = CliRunner().invoke(app, ["verify"], input=stdin, env=env)
    assert result.exit_code == 1
    assert f"ok  {good['command_id']}" in result.output
    assert f"BAD {good['command_id']}: signature mismatch" in result.output
    assert "BAD rb-unsigned: no signature" in result.output
    assert "BAD line 6: not JSON" in result.output
    ok = CliRunner().invoke(app, ["verify"], input=lines[0], env=env)
    assert ok.exit_code == 0


def test_verify_needs_a_key_and_bootstrap_with_topic(app: typer.Typer) -> None:
    """Missing key or --topic without servers is a usage error (exit 2)."""
    runner = CliRunner()
    assert runner.invoke(app, ["verify"], env={"GUARDIAN_SIGNING_KEY": ""}).exit_code == 2
    result = runner.invoke(app, ["verify", "--topic", "t"], env={"GUARDIAN_SIGNING_KEY": "k"})
    assert result.exit_code == 2

"""``guardian demo`` end to end on the embedded broker: one signed rollback, a replayable file."""

from __future__ import annotations

import io
import time
from pathlib import Path

import orjson
import pytest
from rich.console import Console
from typer.testing import CliRunner

from guardian.cli import demo_cmd
from guardian.cli.main import app
from guardian.demo.scenario import BAD_DEPLOY, HEALTHY_DEPLOY
from guardian.errors import ConfigError
from tests.conftest import REPO

pytestmark = pytest.mark.kafka


async def test_demo_rolls_back_the_bad_release_once_and_its_events_replay(
    tmp_path: Path,
) -> None:
    """The bad release gets exactly one verified command, the healthy one none, in under 60 s."""
    events = tmp_path / "events.jsonl"
    screen = io.StringIO()
    started = time.monotonic()
    outcome = await demo_cmd.run_demo(60.0, events, REPO / "rules", Console(file=screen, width=120))
    elapsed = time.monotonic() - started

    assert elapsed < 60
    assert [c["deploy_id"] for c in outcome.commands] == [BAD_DEPLOY]
    assert outcome.signatures_ok == [True]
    assert outcome.commands[0]["to_version"] == "2.4.1"
    assert {d["deploy_id"] for d in outcome.decisions} == {BAD_DEPLOY}
    assert all(n["decision"]["deploy_id"] != HEALTHY_DEPLOY for n in outcome.notifications)
    assert outcome.notifications
    text = screen.getvalue()
    assert "✓ signature verified" in text
    assert "bad release" in text

    lines = events.read_bytes().splitlines()
    assert len(lines) == outcome.events_written
    replayed = CliRunner().invoke(app, ["replay", str(events), "--rules", str(REPO / "rules")])
    assert replayed.exit_code == 0, replayed.output
    decisions = [orjson.loads(line) for line in replayed.stdout.splitlines()]
    assert [(d["deploy_id"], d["action"]) for d in decisions] == [(BAD_DEPLOY, "rollback")]


def test_demo_command_prints_the_replay_command(tmp_path: Path) -> None:
    """``guardian demo`` run as a command exits 0 and tells how to replay its events."""
    events = tmp_path / "demo.jsonl"
    result = CliRunner().invoke(
        app,
        ["demo", "--speed", "80", "--events-out", str(events), "--rules", str(REPO / "rules")],
    )
    assert result.exit_code == 0, result.output
    assert f"guardian replay {events}" in result.output
    assert "phase: bad release" in result.output


def test_missing_rules_are_reported(tmp_path: Path) -> None:
    """A rules path that does not exist stops the demo before anything starts."""
    with pytest.raises(ConfigError, match="no rules found"):
        demo_cmd.find_rules(tmp_path / "nope")
    result = CliRunner().invoke(app, ["demo", "--rules", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "no rules found" in result.output
    assert demo_cmd.find_rules(None).name == "rules"

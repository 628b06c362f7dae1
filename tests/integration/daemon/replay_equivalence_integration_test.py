"""``guardian replay`` reproduces exactly the decisions the daemon made on the same events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from guardian.cli.main import app
from guardian.config.settings import Settings
from tests.integration.daemon.daemon_integration_test import running
from tests.support.kafka import produce_json, read_until
from tests.support.scenarios import mixed_recording

pytestmark = pytest.mark.kafka

Key = tuple[Any, ...]


def _key(decision: dict[str, Any]) -> Key:
    return (
        decision["at"],
        decision["rule"],
        decision["action"],
        decision["state"],
        decision["service"],
        decision["deploy_id"],
        tuple(decision["regions"]),
        tuple(sorted(decision.get("labels", {}).items())),
    )


async def _daemon_decisions(
    settings: Settings, deploys: list[Any], metrics: list[Any]
) -> list[Key]:
    async with running(settings) as daemon:
        bootstrap = daemon.bootstrap_servers
        assert bootstrap
        await produce_json(bootstrap, settings.deploy_topic, deploys)
        await produce_json(bootstrap, settings.metric_topic, metrics)
        # Wait until the audit trail stops growing.
        seen: list[dict[str, Any]] = []
        for _ in range(40):
            now = await read_until(bootstrap, settings.audit_topic, lambda _s: False, timeout_s=1.0)
            if seen and len(now) == len(seen):
                break
            seen = now
            await asyncio.sleep(0.5)
    return sorted(_key(a["details"]["decision"]) for a in seen if a["event"].startswith("decision"))


async def test_replay_matches_daemon(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """The same events through the daemon (Kafka) and through replay (a file) decide alike."""
    deploys, metrics = mixed_recording()
    daemon = await _daemon_decisions(settings_factory(), deploys, metrics)

    events_file = tmp_path / "events.jsonl"
    events_file.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in [*deploys, *metrics]))
    result = CliRunner().invoke(app, ["replay", str(events_file), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    replayed = sorted(_key(orjson.loads(line)) for line in result.stdout.splitlines() if line)

    assert daemon, "the recording should make the daemon decide something"
    assert {k[2] for k in daemon} >= {"rollback", "notify"}
    assert replayed == daemon

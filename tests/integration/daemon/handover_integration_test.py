"""A graceful handover loses no evidence: the next replica decides exactly what replay decides.

A replica that drains (SIGTERM, a rolling update) or gives partitions up in a
rebalance writes the latest state of its services with a live deploy before
its last commit. Without that, only the snapshots written on deploy events,
decisions and the 30-second timer exist, while the input offsets are
committed every batch: the next owner would restore older windows and
statistical tests and never see the evidence in between again.
"""

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
from tests.support.events import T0
from tests.support.kafka import produce_json, read_until
from tests.support.scenarios import mixed_recording

pytestmark = pytest.mark.kafka

SPLIT_MS = T0 + 3_000  # the bad canary is decided at about T0 + 6 s


def _checkout() -> list[dict[str, Any]]:
    """The bad canary of the mixed recording, in a live system's order."""
    deploys, metrics = mixed_recording()
    events = [e for e in [*deploys, *metrics] if e["service"] == "checkout"]
    return sorted(events, key=lambda e: (int(e["timestamp"]), e["kind"] == "metric"))


async def _judged(settings: Settings, events: list[dict[str, Any]]) -> None:
    """Produce ``events`` and wait until the daemon has committed past all of them."""
    async with running(settings) as daemon:
        bootstrap = daemon.bootstrap_servers
        assert bootstrap
        metrics = [e for e in events if e["kind"] == "metric"]
        lifecycle = [e for e in events if e["kind"] != "metric"]
        await produce_json(bootstrap, settings.deploy_topic, lifecycle)
        await produce_json(bootstrap, settings.metric_topic, metrics)
        await asyncio.sleep(2.0)  # judged (the drain below commits the last batch)


async def test_the_next_replica_decides_as_replay_after_a_drain(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory()
    events = _checkout()
    before = [e for e in events if int(e["timestamp"]) < SPLIT_MS]
    after = [e for e in events if int(e["timestamp"]) >= SPLIT_MS]
    await _judged(settings, before)  # the first replica drains here
    await _judged(settings, after)  # the next one restores and goes on
    assert settings.bootstrap_servers
    audits = await read_until(
        settings.bootstrap_servers,
        settings.audit_topic,
        lambda seen: any(a["event"].startswith("decision") for a in seen),
    )
    daemon = [a["details"]["decision"] for a in audits if a["event"].startswith("decision")]

    recording = tmp_path / "events.jsonl"
    recording.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    result = CliRunner().invoke(app, ["replay", str(recording), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    replayed = [orjson.loads(line) for line in result.stdout.splitlines() if line]
    assert [d["rule"] for d in replayed] == ["canary-errors-stat"]
    assert daemon == replayed

"""``guardian replay`` reproduces exactly the decisions the daemon made on the same events.

The recording is written to a file in the order a live system sees it (by
event time, deploy and check events first within an instant) and produced
to Kafka in bursts of very different sizes, each burst's metrics before its
deploy events (so the deploy topic is read behind the metric topic), with
pauses long enough for the daemon's idle ticks. The daemon's decisions
(from the audit trail) and replay's must be the same, rule, reason and
evidence included.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from guardian.cli.main import app
from guardian.config.settings import Settings
from tests.integration.daemon.daemon_integration_test import running
from tests.support.kafka import read_until
from tests.support.scenarios import mixed_recording

pytestmark = pytest.mark.kafka

BURSTS = (1, 3, 40, 120, 400)
IDLE_S = 1.3  # longer than the daemon's idle tick (1 s without records)


def _canonical(decisions: list[dict[str, Any]]) -> list[bytes]:
    return sorted(orjson.dumps(d, option=orjson.OPT_SORT_KEYS) for d in decisions)


async def _produce_in_bursts(settings: Settings, bootstrap: str, events: list[Any]) -> None:
    rng = random.Random(14)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        start = 0
        while start < len(events):
            burst = events[start : start + rng.choice(BURSTS)]
            start += len(burst)
            metrics = [e for e in burst if e["kind"] == "metric"]
            lifecycle = [e for e in burst if e["kind"] != "metric"]
            futures = [
                await producer.send(topic, key=e["service"].encode(), value=orjson.dumps(e))
                for topic, part in (
                    (settings.metric_topic, metrics),
                    (settings.deploy_topic, lifecycle),
                )
                for e in part
            ]
            await asyncio.gather(*futures)
            if rng.random() < 0.3:
                await asyncio.sleep(IDLE_S)
    finally:
        await producer.stop()


async def _daemon_decisions(settings: Settings, events: list[Any]) -> list[dict[str, Any]]:
    async with running(settings) as daemon:
        bootstrap = daemon.bootstrap_servers
        assert bootstrap
        await _produce_in_bursts(settings, bootstrap, events)
        # Wait until the audit trail stops growing.
        seen: list[dict[str, Any]] = []
        for _ in range(40):
            now = await read_until(bootstrap, settings.audit_topic, lambda _s: False, timeout_s=1.0)
            if seen and len(now) == len(seen):
                break
            seen = now
            await asyncio.sleep(0.5)
    return [a["details"]["decision"] for a in seen if a["event"].startswith("decision")]


async def test_replay_matches_daemon(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """The same events through the daemon (Kafka, uneven bursts, pauses) and replay decide alike."""
    deploys, metrics = mixed_recording()
    events = sorted(
        [*deploys, *metrics], key=lambda e: (int(e["timestamp"]), e["kind"] == "metric")
    )
    daemon = await _daemon_decisions(settings_factory(), events)

    events_file = tmp_path / "events.jsonl"
    events_file.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    result = CliRunner().invoke(app, ["replay", str(events_file), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    replayed = [orjson.loads(line) for line in result.stdout.splitlines() if line]

    assert daemon, "the recording should make the daemon decide something"
    assert {d["action"] for d in daemon} >= {"rollback", "notify"}
    assert _canonical(replayed) == _canonical(daemon)

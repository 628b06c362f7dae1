"""Hostile input: every bad record is dead-lettered once, the daemon lives, memory stays capped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import pytest

from guardian.config.settings import Settings
from guardian.daemon import app as daemon_app
from tests.integration.daemon.daemon_integration_test import running
from tests.support.events import T0, deploy, traffic
from tests.support.kafka import produce, produce_json, read_until

pytestmark = pytest.mark.kafka

METRIC: dict[str, Any] = {
    "kind": "metric",
    "service": "checkout",
    "environment": "production",
    "timestamp": T0,
    "values": {"requests": 10, "errors": 0},
}

HOSTILE: list[bytes] = [
    b"\x00\x01\x02 random bytes",
    b"\xff\xfe\xfd invalid utf-8",
    b'{"kind": "metric", "service": "\xff\xfe"}',
    orjson.dumps([1, 2, 3]),
    orjson.dumps({**METRIC, "service": "x" * 100_000}),
    orjson.dumps({**METRIC, "values": {f"m{i}": 1 for i in range(10_000)}}),
    b"[" * 100_000 + b"]" * 100_000,
    b'{"kind": "metric", "values": {"requests": NaN}}',
    b'{"kind": "metric", "values": {"requests": Infinity}}',
    orjson.dumps({**METRIC, "values": {"requests": -5, "errors": 0}}),
    orjson.dumps({**METRIC, "values": {"requests": 5, "errors": 50}}),
    orjson.dumps({**METRIC, "timestamp": 4_200_000_000_000}),
    orjson.dumps({**METRIC, "timestamp": T0 + 10 * 86_400_000}),  # ten days ahead of wall time
    orjson.dumps({**METRIC, "timestamp": 5}),
    orjson.dumps({**METRIC, "kind": "alien"}),
    orjson.dumps({"kind": "deploy", "type": "started"}),
    b"x" * 900_000,
]


async def test_hostile_records_are_dead_lettered_and_valid_events_still_judged(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Garbage of every kind goes to the DLQ once each; a bad deploy beside it is rolled back."""
    monkeypatch.setattr(daemon_app, "_LAG_INTERVAL_S", 0.5)
    settings = settings_factory(max_series=200, dlq_max_original_bytes=4096)
    async with running(settings) as daemon:
        bootstrap = daemon.bootstrap_servers
        assert bootstrap
        await produce_json(bootstrap, settings.deploy_topic, [deploy(deploy_id="d-hostile")])
        await produce(bootstrap, settings.metric_topic, [(b"checkout", v) for v in HOSTILE])
        # Many distinct services: the series cap must bite, not memory.
        await produce_json(
            bootstrap,
            settings.metric_topic,
            [{**METRIC, "service": f"flood-{i}", "timestamp": T0 + i} for i in range(3000)],
        )
        await produce_json(bootstrap, settings.metric_topic, traffic(seconds=120, error_rate=0.08))
        letters = await read_until(
            bootstrap, settings.dlq_topic, lambda seen: len(seen) >= len(HOSTILE)
        )
        commands = await read_until(bootstrap, settings.command_topic, bool)
        await asyncio.sleep(2.0)  # let the stats loop export the engine's counters
        url = f"http://127.0.0.1:{daemon.http_port}/metrics"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            metrics_text = await response.text()
        letters = await read_until(bootstrap, settings.dlq_topic, lambda _s: False, timeout_s=1)
    assert len(letters) == len(HOSTILE)
    assert sorted(letter["source"]["offset"] for letter in letters) == list(range(len(HOSTILE)))
    assert all(letter["reason"] for letter in letters)
    assert all(len(orjson.dumps(letter)) < 1_000_000 for letter in letters)
    assert any(letter["truncated"] for letter in letters)
    assert [c["deploy_id"] for c in commands] == ["d-hostile"]
    assert daemon.readiness.ready
    assert 'guardian_events_rejected_total{reason="series_cap"}' in metrics_text
    tracked = next(
        float(line.split()[-1])
        for line in metrics_text.splitlines()
        if line.startswith("guardian_tracked_series ")
    )
    assert 200 <= tracked <= 201  # the cap, plus the live deploy's series that bypasses it

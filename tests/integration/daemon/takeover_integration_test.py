"""Handover between two in-process daemons: the one that stays judges the leaver's deploys."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from guardian.config.settings import Settings
from guardian.daemon.app import Daemon
from tests.integration.daemon.daemon_integration_test import _wait_ready
from tests.support.events import T0, deploy, traffic
from tests.support.kafka import produce_json, read_for

pytestmark = pytest.mark.kafka
SERVICES = [f"svc-{i}" for i in range(8)]


async def test_remaining_replica_judges_the_deploys_of_one_that_left(
    settings_factory: Callable[..., Settings],
) -> None:
    """Deploys watched by a replica that leaves the group are rolled back by the other, once."""
    settings = settings_factory()
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    leaver = Daemon(settings)
    stayer = Daemon(settings.model_copy(update={"http": "127.0.0.1:0"}))
    leaving, staying = asyncio.create_task(leaver.run()), asyncio.create_task(stayer.run())
    try:
        await _wait_ready(leaver, leaving)
        await _wait_ready(stayer, staying)
        await produce_json(
            bootstrap,
            settings.deploy_topic,
            [deploy(deploy_id=f"d-{s}", service=s, strategy="rolling") for s in SERVICES],
        )
        healthy = traffic(start_ms=T0 - 120_000, seconds=150, every_s=5, error_rate=0.004)
        await produce_json(
            bootstrap,
            settings.metric_topic,
            [{**e, "service": s} for s in SERVICES for e in healthy],
        )
        await asyncio.sleep(3)  # both judge and snapshot their services
        leaver.request_stop()
        await leaving
        bad = traffic(start_ms=T0 + 30_000, seconds=120, error_rate=0.09)
        await produce_json(
            bootstrap, settings.metric_topic, [{**e, "service": s} for s in SERVICES for e in bad]
        )
        commands: list[dict[str, object]] = []
        for _ in range(60):
            commands = await read_for(bootstrap, settings.command_topic, 0.5)
            if len({c["deploy_id"] for c in commands}) >= len(SERVICES):
                break
    finally:
        stayer.request_stop()
        await staying
    ids: dict[object, set[object]] = {}
    for command in commands:
        ids.setdefault(command["deploy_id"], set()).add(command["command_id"])
    assert set(ids) == {f"d-{s}" for s in SERVICES}
    assert all(len(found) == 1 for found in ids.values())

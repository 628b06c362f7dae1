"""Two replicas in one group: killing one hands its services to the other, no decision lost."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from guardian.config.settings import Settings
from guardian.kafka.embedded import free_port
from tests.e2e.support import guardian_process, settings_env, wait_exit, wait_ready
from tests.support.events import T0, deploy, traffic
from tests.support.kafka import produce_json, read_for, read_until

pytestmark = pytest.mark.kafka

SERVICES = [f"svc-{i}" for i in range(8)]


async def test_surviving_replica_takes_over_and_rolls_back_once(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Deploys seen by a killed replica are rolled back by the survivor, one command each."""
    settings = settings_factory()
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    env = settings_env(settings)
    second_port = free_port()
    with (
        guardian_process(env, log_path=tmp_path / "a.log") as first,
        guardian_process(
            {**env, "GUARDIAN_HTTP": f"127.0.0.1:{second_port}"}, log_path=tmp_path / "b.log"
        ) as second,
    ):
        await wait_ready(settings.http_port, first)
        await wait_ready(second_port, second)
        await produce_json(
            bootstrap,
            settings.deploy_topic,
            [deploy(deploy_id=f"d-{s}", service=s, strategy="rolling") for s in SERVICES],
        )
        healthy = [
            e
            for s in SERVICES
            for e in traffic(
                service=s, start_ms=T0 - 120_000, seconds=150, every_s=5, error_rate=0.004
            )
        ]
        await produce_json(bootstrap, settings.metric_topic, healthy)
        await asyncio.sleep(3)  # both replicas judge and snapshot their half
        first.send_signal(signal.SIGKILL)
        await wait_exit(first)
        bad = [
            e
            for s in SERVICES
            for e in traffic(service=s, start_ms=T0 + 30_000, seconds=120, error_rate=0.09)
        ]
        await produce_json(bootstrap, settings.metric_topic, bad)
        commands = await read_until(
            bootstrap,
            settings.command_topic,
            lambda seen: {c["deploy_id"] for c in seen} >= {f"d-{s}" for s in SERVICES},
            timeout_s=60,
        )
        commands = await read_for(bootstrap, settings.command_topic, 2.0)
        second.send_signal(signal.SIGTERM)
        assert await wait_exit(second) == 0
    by_deploy: dict[str, set[str]] = {}
    for command in commands:
        by_deploy.setdefault(command["deploy_id"], set()).add(command["command_id"])
    assert set(by_deploy) == {f"d-{s}" for s in SERVICES}
    assert all(len(ids) == 1 for ids in by_deploy.values())

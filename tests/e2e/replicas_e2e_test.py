"""Two and three replicas in one group: killing one hands its services on, no decision lost."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest

from guardian.config.settings import Settings
from guardian.ports import free_port
from tests.e2e.support import guardian_process, settings_env, wait_exit, wait_ready
from tests.support.events import T0, deploy, traffic
from tests.support.kafka import produce_json, read_for, read_until

pytestmark = pytest.mark.kafka

SERVICES = [f"svc-{i}" for i in range(8)]
HEALTHY = [f"fine-{i}" for i in range(4)]


@pytest.mark.parametrize("replicas", [2, 3])
async def test_surviving_replicas_take_over_and_roll_back_once(
    replicas: int, settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Deploys seen by a killed replica are rolled back by the survivors, one command each.

    With three members aiokafka's default round-robin assignor split a
    service's deploy and metric partitions between replicas; healthy deploys
    alongside catch a false rollback as surely as a missed one.
    """
    settings = settings_factory()
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    env = settings_env(settings)
    ports = [settings.http_port] + [free_port() for _ in range(replicas - 1)]
    with ExitStack() as stack:
        processes = [
            stack.enter_context(
                guardian_process(
                    {**env, "GUARDIAN_HTTP": f"127.0.0.1:{port}"},
                    log_path=tmp_path / f"replica-{index}.log",
                )
            )
            for index, port in enumerate(ports)
        ]
        for port, process in zip(ports, processes, strict=True):
            await wait_ready(port, process)
        await produce_json(
            bootstrap,
            settings.deploy_topic,
            [deploy(deploy_id=f"d-{s}", service=s, strategy="rolling") for s in SERVICES + HEALTHY],
        )
        healthy = [
            e
            for s in SERVICES + HEALTHY
            for e in traffic(
                service=s, start_ms=T0 - 120_000, seconds=150, every_s=5, error_rate=0.004
            )
        ]
        await produce_json(bootstrap, settings.metric_topic, healthy)
        await asyncio.sleep(3)  # every replica judges and snapshots its share
        victim, survivors = processes[0], processes[1:]
        victim.send_signal(signal.SIGKILL)
        await wait_exit(victim)
        bad = [
            e
            for s in SERVICES
            for e in traffic(service=s, start_ms=T0 + 30_000, seconds=120, error_rate=0.09)
        ]
        still_fine = [
            e
            for s in HEALTHY
            for e in traffic(service=s, start_ms=T0 + 30_000, seconds=120, error_rate=0.004)
        ]
        await produce_json(bootstrap, settings.metric_topic, bad + still_fine)
        await read_until(
            bootstrap,
            settings.command_topic,
            lambda seen: {c["deploy_id"] for c in seen} >= {f"d-{s}" for s in SERVICES},
            timeout_s=60,
        )
        commands = await read_for(bootstrap, settings.command_topic, 2.0)
        for survivor in survivors:
            survivor.send_signal(signal.SIGTERM)
        for survivor in survivors:
            assert await wait_exit(survivor) == 0
    by_deploy: dict[str, set[str]] = {}
    for command in commands:
        by_deploy.setdefault(command["deploy_id"], set()).add(command["command_id"])
    assert set(by_deploy) == {f"d-{s}" for s in SERVICES}, "a deploy missed or falsely rolled back"
    assert all(len(ids) == 1 for ids in by_deploy.values())

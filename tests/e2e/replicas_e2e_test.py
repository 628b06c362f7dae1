"""Two and three replicas in one group: killing one hands its services on, no decision lost.

Run with the default group session timeout (10 s), the test also measures
the takeover: from the SIGKILL to the first rollback command a survivor
issues for a deploy the dead replica owned (printed as ``takeover_s``).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import orjson
import pytest

from guardian.config.settings import Settings
from guardian.ports import free_port
from tests.e2e.support import guardian_process, settings_env, wait_exit, wait_ready
from tests.e2e.support_kafka import read_records
from tests.support.events import T0, deploy, traffic
from tests.support.kafka import produce_json, read_until

pytestmark = pytest.mark.kafka

SERVICES = [f"svc-{i}" for i in range(8)]
HEALTHY = [f"fine-{i}" for i in range(4)]
TAKEOVER_LIMIT_S = 30.0
DEFAULT_SESSION_TIMEOUT_MS = 10_000
DEFAULT_HEARTBEAT_INTERVAL_MS = 3_000


def _owned_metric_partitions(log: Path, metric_topic: str) -> set[int]:
    """Partitions of the metric topic a replica held last, from its partitions_assigned lines.

    The notifier's own group logs the same event for the notification topic: those are skipped.
    """
    owned: set[int] = set()
    for line in log.read_bytes().splitlines():
        if not line.startswith(b"{"):
            continue
        entry = orjson.loads(line)
        if entry["event"] != "partitions_assigned":
            continue
        held = [
            p for t, _, p in (n.rpartition("-") for n in entry["partitions"]) if t == metric_topic
        ]
        if held:
            owned = {int(p) for p in held}
    return owned


@pytest.mark.parametrize("replicas", [2, 3])
async def test_surviving_replicas_take_over_and_roll_back_once(
    replicas: int, settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Deploys seen by a killed replica are rolled back by the survivors, one command each.

    With three members aiokafka's default round-robin assignor split a
    service's deploy and metric partitions between replicas; healthy deploys
    alongside catch a false rollback as surely as a missed one.
    """
    settings = settings_factory(
        session_timeout_ms=DEFAULT_SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=DEFAULT_HEARTBEAT_INTERVAL_MS,
    )
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
        orphaned = _owned_metric_partitions(tmp_path / "replica-0.log", settings.metric_topic)
        killed_at_ms = time.time() * 1000
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
        commands = await read_records(bootstrap, settings.command_topic, timeout_s=2.0)
        metrics = await read_records(
            bootstrap, settings.metric_topic, lambda seen: len(seen) >= len(healthy), timeout_s=10
        )
        for survivor in survivors:
            survivor.send_signal(signal.SIGTERM)
        for survivor in survivors:
            assert await wait_exit(survivor) == 0
    by_deploy: dict[str, set[str]] = {}
    for command in commands:
        by_deploy.setdefault(command.value["deploy_id"], set()).add(command.value["command_id"])
    assert set(by_deploy) == {f"d-{s}" for s in SERVICES}, "a deploy missed or falsely rolled back"
    assert all(len(ids) == 1 for ids in by_deploy.values())
    partition_of = {m.value["service"]: m.partition for m in metrics}
    taken_over = [c for c in commands if partition_of[c.value["service"]] in orphaned]
    assert taken_over, f"the killed replica owned no bad deploy (partitions {orphaned})"
    takeover_s = (min(c.timestamp_ms for c in taken_over) - killed_at_ms) / 1000
    print(f"replicas={replicas} takeover_s={takeover_s:.1f}")
    assert takeover_s <= TAKEOVER_LIMIT_S

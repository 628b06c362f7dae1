"""Broker outages: the guardian stays up, reports not-ready, and catches up afterwards.

Both tests break a broker of their own, never the session's, once on each
kind: the embedded broker (data on a local S3 server, so a restart keeps
it) and a one-node Apache Kafka cluster in the test's directory (data on
disk). One test freezes the broker (SIGSTOP) past the session timeout, the
other stops it and starts it again.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import pytest

from guardian.daemon import app as daemon_app
from guardian.kafka.embedded import EmbeddedBroker
from tests.e2e.support_kafka import cluster_settings, require_kafka
from tests.integration.daemon.daemon_integration_test import running
from tests.support.brokers import EMBEDDED, KAFKA, KafkaCluster
from tests.support.events import T0, deploy, traffic
from tests.support.kafka import produce_json, read_for, read_until
from tests.support.metrics import events_consumed
from tests.support.s3 import s3_server
from tests.support.waiting import eventually

pytestmark = pytest.mark.kafka


class OwnBroker(Protocol):
    """A one-node broker the test may freeze, stop and start again with its data."""

    bootstrap: str
    is_kafka: bool

    def freeze(self) -> None: ...

    def thaw(self) -> None: ...

    async def stop(self) -> None: ...

    async def start(self) -> None: ...


class _Embedded:
    """The embedded broker, storing on S3 so that a restart keeps topics, records and offsets."""

    is_kafka = False

    def __init__(self, broker: EmbeddedBroker) -> None:
        self._broker = broker
        self.bootstrap = broker.bootstrap_servers

    def _pid(self) -> int:
        assert self._broker.pid is not None, "the embedded broker is not running"
        return self._broker.pid

    def freeze(self) -> None:
        os.kill(self._pid(), signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self._pid(), signal.SIGCONT)

    async def stop(self) -> None:
        await self._broker.stop()

    async def start(self) -> None:
        await self._broker.start()


class _Kafka:
    """A one-node Apache Kafka cluster: stop is SIGTERM; start resumes its ports and data."""

    is_kafka = True
    node = 1

    def __init__(self, cluster: KafkaCluster, bootstrap: str) -> None:
        self._cluster = cluster
        self.bootstrap = bootstrap

    def freeze(self) -> None:
        self._cluster.freeze(self.node)

    def thaw(self) -> None:
        self._cluster.thaw(self.node)

    async def stop(self) -> None:
        await asyncio.to_thread(self._cluster.stop)

    async def start(self) -> None:
        await asyncio.to_thread(self._cluster.start)


def _selected(kind: str) -> None:
    """Skip a kind that GUARDIAN_TEST_BROKERS leaves out."""
    wanted = [k.strip() for k in os.environ.get("GUARDIAN_TEST_BROKERS", "").split(",")]
    if any(wanted) and kind not in wanted:
        pytest.skip(f"GUARDIAN_TEST_BROKERS leaves {kind} out")


@pytest.fixture(params=[EMBEDDED, KAFKA])
async def own_broker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OwnBroker]:
    """A broker of the parameter's kind for this test alone, removed afterwards."""
    kind: str = request.param
    _selected(kind)
    if kind == KAFKA:
        require_kafka()
        cluster = KafkaCluster(tmp_path / "kafka")
        bootstrap = await asyncio.to_thread(cluster.start)
        try:
            yield _Kafka(cluster, bootstrap)
        finally:
            await asyncio.to_thread(cluster.stop, purge=True)
        return
    async with s3_server() as s3:
        broker = s3.broker()
        await broker.start()
        try:
            yield _Embedded(broker)
        finally:
            await broker.stop()


@pytest.fixture(autouse=True)
def _quick_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Probe the broker every 0.5 s with a 1 s timeout, so readiness follows an outage quickly."""
    monkeypatch.setattr(daemon_app, "_LAG_INTERVAL_S", 0.5)
    monkeypatch.setattr(daemon_app, "_BROKER_PROBE_TIMEOUT_S", 1.0)


async def test_broker_frozen_longer_than_the_session_timeout(own_broker: OwnBroker) -> None:
    """SIGSTOP on the broker → /readyz not ready; SIGCONT → ready again and the deploy is judged."""
    bootstrap = own_broker.bootstrap
    settings = cluster_settings(bootstrap, kafka=own_broker.is_kafka)
    async with running(settings) as daemon:
        await produce_json(bootstrap, settings.deploy_topic, [deploy(deploy_id="d-outage")])
        own_broker.freeze()
        try:
            await eventually(lambda: not daemon.readiness.ready)
            assert "broker_connected" in daemon.readiness.failing()
            await asyncio.sleep(settings.session_timeout_ms / 1000 + 1)
        finally:
            own_broker.thaw()
        await eventually(lambda: daemon.readiness.ready, timeout_s=60)
        await produce_json(bootstrap, settings.metric_topic, traffic(seconds=120, error_rate=0.08))
        commands = await read_until(bootstrap, settings.command_topic, bool, timeout_s=60)
    assert [c["deploy_id"] for c in commands] == ["d-outage"]


async def test_broker_restarted_with_its_data(own_broker: OwnBroker) -> None:
    """Broker stopped and started again with its data: not ready while down, no decision lost.

    The deploy and its first healthy minute are judged before the broker
    goes; the bad minutes are produced after it is back, so the command can
    only come from the state the guardian kept through the outage.
    """
    bootstrap = own_broker.bootstrap
    settings = cluster_settings(bootstrap, kafka=own_broker.is_kafka)
    async with running(settings) as daemon:
        await produce_json(bootstrap, settings.deploy_topic, [deploy(deploy_id="d-restart")])
        await produce_json(bootstrap, settings.metric_topic, traffic(seconds=60))
        await eventually(lambda: events_consumed(daemon.metrics.registry) >= 61)

        await own_broker.stop()
        await eventually(lambda: not daemon.readiness.ready)
        assert "broker_connected" in daemon.readiness.failing()
        await asyncio.sleep(settings.session_timeout_ms / 1000 + 1)
        await own_broker.start()

        await eventually(lambda: daemon.readiness.ready, timeout_s=60)
        kept = await read_until(bootstrap, settings.deploy_topic, bool, timeout_s=10)
        assert [e["deploy_id"] for e in kept] == ["d-restart"], "broker lost its data"
        await produce_json(
            bootstrap,
            settings.metric_topic,
            traffic(start_ms=T0 + 60_000, seconds=120, error_rate=0.08),
        )
        commands = await read_until(bootstrap, settings.command_topic, bool, timeout_s=60)
        commands += await read_for(bootstrap, settings.command_topic, 2)
    ids = {c["command_id"] for c in commands}
    assert [c["deploy_id"] for c in commands][:1] == ["d-restart"]
    assert len(ids) == 1, commands

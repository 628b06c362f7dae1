"""Broker outages: the guardian stays up, reports not-ready, and catches up afterwards.

Both tests break a broker of their own (also when the suite runs against a
real Kafka): one freezes it, the other stops it and starts it again.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

import pytest

from guardian.config.settings import Settings
from guardian.daemon import app as daemon_app
from guardian.kafka.embedded import EmbeddedBroker
from tests.integration.daemon.daemon_integration_test import running
from tests.support.events import T0, deploy, traffic
from tests.support.kafka import produce_json, read_for, read_until
from tests.support.metrics import events_consumed
from tests.support.s3 import s3_server
from tests.support.waiting import eventually

pytestmark = pytest.mark.kafka


async def test_broker_frozen_longer_than_the_session_timeout(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGSTOP on the broker → /readyz not ready; SIGCONT → ready again and the deploy is judged."""
    monkeypatch.setattr(daemon_app, "_LAG_INTERVAL_S", 0.5)
    monkeypatch.setattr(daemon_app, "_BROKER_PROBE_TIMEOUT_S", 1.0)
    async with EmbeddedBroker() as broker:
        settings = settings_factory(bootstrap_servers=broker.bootstrap_servers)
        async with running(settings) as daemon:
            await produce_json(
                broker.bootstrap_servers, settings.deploy_topic, [deploy(deploy_id="d-outage")]
            )
            assert broker.pid is not None
            os.kill(broker.pid, signal.SIGSTOP)
            try:
                await eventually(lambda: not daemon.readiness.ready)
                assert "broker_connected" in daemon.readiness.failing()
                await asyncio.sleep(settings.session_timeout_ms / 1000 + 1)
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            await eventually(lambda: daemon.readiness.ready, timeout_s=60)
            await produce_json(
                broker.bootstrap_servers,
                settings.metric_topic,
                traffic(seconds=120, error_rate=0.08),
            )
            commands = await read_until(
                broker.bootstrap_servers, settings.command_topic, bool, timeout_s=60
            )
    assert [c["deploy_id"] for c in commands] == ["d-outage"]


async def test_broker_restarted_with_its_data(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Broker stopped and started again (data kept on S3): not ready while down, no decision lost.

    The deploy and its first healthy minute are judged before the broker
    goes; the bad minutes are produced after it is back, so the command can
    only come from the state the guardian kept through the outage.
    """
    monkeypatch.setattr(daemon_app, "_LAG_INTERVAL_S", 0.5)
    monkeypatch.setattr(daemon_app, "_BROKER_PROBE_TIMEOUT_S", 1.0)
    async with s3_server() as s3:
        broker = s3.broker()
        await broker.start()
        try:
            settings = settings_factory(bootstrap_servers=broker.bootstrap_servers)
            async with running(settings) as daemon:
                bootstrap = broker.bootstrap_servers
                await produce_json(
                    bootstrap, settings.deploy_topic, [deploy(deploy_id="d-restart")]
                )
                await produce_json(bootstrap, settings.metric_topic, traffic(seconds=60))
                await eventually(lambda: events_consumed(daemon.metrics.registry) >= 61)

                await broker.stop()
                await eventually(lambda: not daemon.readiness.ready)
                assert "broker_connected" in daemon.readiness.failing()
                await asyncio.sleep(settings.session_timeout_ms / 1000 + 1)
                await broker.start()

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
        finally:
            await broker.stop()
    ids = {c["command_id"] for c in commands}
    assert [c["deploy_id"] for c in commands][:1] == ["d-restart"]
    assert len(ids) == 1, commands

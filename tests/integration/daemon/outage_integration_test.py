"""A frozen broker: the guardian stays up, reports not-ready, and catches up afterwards."""

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
from tests.support.events import deploy, traffic
from tests.support.kafka import produce_json, read_until
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

"""The daemon with its MQTT source on the real Mosquitto at 127.0.0.1:1883."""

from __future__ import annotations

from collections.abc import Callable

import aiomqtt
import orjson
import pytest

from guardian.config.settings import Settings
from tests.integration.daemon.daemon_integration_test import running
from tests.support.events import deploy, traffic
from tests.support.kafka import read_until, unique

pytestmark = pytest.mark.kafka


async def test_events_over_mqtt_are_judged_like_kafka_events(
    settings_factory: Callable[..., Settings],
) -> None:
    """A deploy and bad metrics published over MQTT produce a rollback command on Kafka."""
    prefix = unique("guardian-test")
    settings = settings_factory(mqtt_url="mqtt://127.0.0.1:1883", mqtt_topics=[f"{prefix}/#"])
    async with running(settings) as daemon:
        assert daemon.readiness.conditions.get("mqtt_connected") is True
        async with aiomqtt.Client("127.0.0.1", 1883) as client:
            await client.publish(f"{prefix}/deploys", orjson.dumps(deploy(deploy_id="d-mq")), qos=1)
            await client.publish(f"{prefix}/metrics", b"\x00 not json", qos=1)
            for event in traffic(seconds=150, error_rate=0.08, cohort="canary"):
                await client.publish(f"{prefix}/metrics", orjson.dumps(event), qos=1)
        bootstrap = daemon.bootstrap_servers
        assert bootstrap
        commands = await read_until(bootstrap, settings.command_topic, bool)
        letters = await read_until(bootstrap, settings.dlq_topic, bool)
    assert commands[0]["deploy_id"] == "d-mq"
    assert letters[0]["source"]["transport"] == "mqtt"
    assert letters[0]["source"]["topic"] == f"{prefix}/metrics"

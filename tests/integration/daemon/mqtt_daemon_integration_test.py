"""The daemon with its MQTT source on a real Mosquitto (the session's, on a free port)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiomqtt
import orjson
import pytest

from guardian.config.settings import Settings
from guardian.daemon.state import partition_of
from guardian.kafka.admin import ensure_topics
from guardian.kafka.source import KafkaSource
from tests.integration.daemon.daemon_integration_test import running
from tests.support.events import deploy, traffic
from tests.support.kafka import read_until, unique
from tests.support.mosquitto import Mosquitto
from tests.support.waiting import eventually

pytestmark = pytest.mark.kafka


async def test_events_over_mqtt_are_judged_like_kafka_events(
    settings_factory: Callable[..., Settings], mosquitto: Mosquitto
) -> None:
    """A deploy and bad metrics published over MQTT produce a rollback command on Kafka."""
    prefix = unique("guardian-test")
    settings = settings_factory(mqtt_url=mosquitto.url, mqtt_topics=[f"{prefix}/#"])
    async with running(settings) as daemon:
        assert daemon.readiness.conditions.get("mqtt_connected") is True
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
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


async def test_mqtt_events_of_a_service_another_replica_owns_are_forwarded_to_kafka(
    settings_factory: Callable[..., Settings], mosquitto: Mosquitto
) -> None:
    """Two members share two partitions; MQTT events of the peer's service go to Kafka.

    The peer is a plain group member that holds its partition and judges
    nothing, so the forwarded deploy gets no command, while the daemon's own
    service, published the same way, is judged and rolled back.
    """
    prefix = unique("guardian-test")
    settings = settings_factory(
        mqtt_url=mosquitto.url, mqtt_topics=[f"{prefix}/#"], topic_partitions=2
    )
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    await ensure_topics(settings, bootstrap)
    held: set[tuple[str, int]] = set()

    async def on_change(parts: frozenset[tuple[str, int]]) -> None:
        held.clear()
        held.update(parts)

    topics = [settings.deploy_topic, settings.metric_topic]
    async with KafkaSource(settings, bootstrap, topics, on_change) as peer:
        polling = asyncio.create_task(_poll_forever(peer))
        try:
            async with running(settings) as daemon:
                registry = daemon.metrics.registry
                await eventually(
                    lambda: (
                        len(held) == 2
                        and registry.get_sample_value("guardian_owned_partitions") == 1
                    ),
                    timeout_s=30,
                )
                peer_partition = next(iter(held))[1]
                foreign = _service_on(peer_partition)
                home = _service_on(1 - peer_partition)
                async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
                    for service in (foreign, home):
                        event = deploy(deploy_id=f"d-{service}", service=service)
                        await client.publish(f"{prefix}/deploys", orjson.dumps(event), qos=1)
                        for metric in traffic(service=service, seconds=150, error_rate=0.08):
                            await client.publish(f"{prefix}/metrics", orjson.dumps(metric), qos=1)
                commands = await read_until(bootstrap, settings.command_topic, bool)
                forwarded = await read_until(
                    bootstrap, settings.metric_topic, lambda seen: len(seen) >= 150
                )
                deploys = await read_until(bootstrap, settings.deploy_topic, bool)
                assert registry.get_sample_value("guardian_events_forwarded_total") == 151
        finally:
            polling.cancel()
    assert {c["deploy_id"] for c in commands} == {f"d-{home}"}
    assert {e["service"] for e in forwarded} == {foreign}
    assert [e["deploy_id"] for e in deploys] == [f"d-{foreign}"]


async def _poll_forever(source: KafkaSource) -> None:
    while True:
        await source.getmany(timeout_ms=100)


def _service_on(partition: int) -> str:
    return next(name for i in range(1000) if partition_of(name := f"svc-{i}", 2) == partition)

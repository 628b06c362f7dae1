"""The CDEvents bridge over a real broker: a CD tool's own topic forwarded to the deploy topic."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from guardian.config.settings import Settings
from guardian.errors import ConfigError
from guardian.inputs.adapters.deploys import DeployBridge
from guardian.inputs.adapters.writer import EventWriter
from guardian.kafka.admin import create_missing_topics
from guardian.metrics import GuardianMetrics
from tests.integration.inputs.support import committed_total, read_keyed
from tests.support.cdevents import cdevent, kafka_form
from tests.support.kafka import unique

pytestmark = pytest.mark.kafka

AT_MS = 1_795_478_400_000


async def _produce(
    bootstrap: str, topic: str, records: list[tuple[list[tuple[str, bytes]], bytes]]
) -> None:
    """One partition, in order: the offsets of the dead letters are known."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for headers, value in records:
            await (
                await producer.send(topic, value=value, key=b"argocd", headers=headers, partition=0)
            )
    finally:
        await producer.stop()


async def test_cdevents_on_a_cd_tools_topic_reach_the_deploy_topic_keyed_by_service(
    settings_factory: Callable[..., Settings],
) -> None:
    """Every form is forwarded as v1; other types skipped; garbage and metrics dead-lettered."""
    topic = unique("argocd.cdevents")
    settings = settings_factory()
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    await create_missing_topics(
        settings, bootstrap, {topic: {}, settings.deploy_topic: {}, settings.dlq_topic: {}}
    )
    pipeline_run = cdevent(at_ms=AT_MS)
    pipeline_run["context"]["type"] = "dev.cdevents.pipelinerun.started.0.1.1"
    metric = {
        "kind": "metric",
        "service": "cart",
        "environment": "production",
        "timestamp": AT_MS,
        "values": {"requests": 1},
    }
    records = [
        kafka_form(cdevent("upgraded", service="checkout", at_ms=AT_MS), "binary"),
        kafka_form(cdevent("deployed", service="cart", at_ms=AT_MS, event_id="e2"), "structured"),
        kafka_form(cdevent("rolledback", service="search", version="1.0.0", at_ms=AT_MS), "bare"),
        kafka_form(pipeline_run, "bare"),  # offset 3: not a deploy, skipped
        ([], b"\x89PNG not an event"),  # offset 4
        ([], orjson.dumps(metric)),  # offset 5
    ]
    await _produce(bootstrap, topic, records)
    stop = asyncio.Event()
    async with EventWriter(settings, bootstrap) as writer:
        bridge = DeployBridge(settings, bootstrap, [topic], writer, GuardianMetrics())
        async with bridge:
            task = asyncio.create_task(bridge.run(stop))
            deploys = await read_keyed(bootstrap, settings.deploy_topic, 3)
            letters = await read_keyed(bootstrap, settings.dlq_topic, 2)
            deadline = asyncio.get_running_loop().time() + 20
            while await committed_total(bootstrap, bridge.group_id, topic) < len(records):
                assert asyncio.get_running_loop().time() < deadline, "never committed"
                await asyncio.sleep(0.2)
            stop.set()
            await asyncio.wait_for(task, 20)
    forwarded = sorted(
        (key, d["kind"], d["type"], d["service"], d["version"]) for key, d in deploys
    )
    assert forwarded == [
        (b"cart", "deploy", "completed", "cart", "2.4.1"),
        (b"checkout", "deploy", "completed", "checkout", "2.4.1"),
        (b"search", "deploy", "rolled_back", "search", "1.0.0"),
    ]
    by_offset = {letter["source"]["offset"]: letter for _, letter in letters}
    assert sorted(by_offset) == [4, 5]
    assert all(letter["source"]["topic"] == topic for letter in by_offset.values())
    assert "not valid JSON" in by_offset[4]["reason"]
    assert "metric topic" in by_offset[5]["reason"]
    assert bridge.group_id == f"{settings.group_id}-cdevents"


def test_the_deploy_topic_itself_is_not_bridged() -> None:
    """Bridging the deploy topic would forward every event to itself: a configuration error."""
    settings = Settings()
    with pytest.raises(ConfigError, match="deploy topic itself"):
        DeployBridge(
            settings,
            "unused:9092",
            [settings.deploy_topic],
            EventWriter(settings, "unused:9092"),
            GuardianMetrics(),
        )

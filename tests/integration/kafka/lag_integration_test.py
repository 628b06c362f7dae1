"""Consumer lag against the broker's own end offsets.

On Apache Kafka the lag the source reports, and the daemon exports as
``guardian_consumer_lag``, is exactly end offset minus the consumer's
position (equal to the committed offset between batches). The embedded
broker reports a partition's end as the start of its last batch, so there the
figure can only be at most the true lag, never negative.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from guardian.config.settings import Settings
from guardian.kafka.admin import ensure_topics
from guardian.kafka.source import KafkaSource, RawRecord
from tests.integration.daemon.daemon_integration_test import running
from tests.support.brokers import TestBroker
from tests.support.events import traffic
from tests.support.kafka import produce, produce_json
from tests.support.waiting import eventually

pytestmark = pytest.mark.kafka

BATCHES, PER_BATCH = 4, 25


async def _end_offsets(
    bootstrap: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """End offsets as a consumer outside the group sees them."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()


async def _committed(
    bootstrap: str, group_id: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The group's committed offsets (asked without joining the group)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        offsets = {tp: await consumer.committed(tp) for tp in partitions}
        return {tp: offset for tp, offset in offsets.items() if offset is not None}
    finally:
        await consumer.stop()


async def test_lag_of_a_partly_read_partition_is_end_minus_position(
    settings_factory: Callable[..., Settings], broker: TestBroker
) -> None:
    """100 records, one batch of at most 30 taken and committed: lag is 100 minus the position."""
    settings = settings_factory(topic_partitions=1, max_batch_records=30)
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    await ensure_topics(settings, bootstrap)
    topic = settings.metric_topic
    for batch in range(BATCHES):
        records = [(b"k", b"%d-%d" % (batch, n)) for n in range(PER_BATCH)]
        await produce(bootstrap, topic, records)
    async with KafkaSource(settings, bootstrap, [topic]) as source:
        taken: list[RawRecord] = []
        for _ in range(100):
            taken += await source.getmany(timeout_ms=200)
            if taken:
                break
        assert 0 < len(taken) <= 30
        position = taken[-1].offset + 1
        await source.commit({(topic, 0): position})
        lag = await source.lag()
        tp = TopicPartition(topic, 0)
        end = (await _end_offsets(bootstrap, [tp]))[tp]
        committed = (await _committed(bootstrap, settings.group_id, [tp]))[tp]
    assert committed == position
    true_lag = BATCHES * PER_BATCH - position
    if broker.is_kafka:
        assert end == BATCHES * PER_BATCH
        assert lag == {(topic, 0): end - committed} == {(topic, 0): true_lag}
    else:
        # The end it reports is the start of the last batch: the lag is low by up to a batch.
        assert true_lag - PER_BATCH < lag[(topic, 0)] <= true_lag


async def test_daemon_exports_the_lag_of_every_assigned_partition(
    settings_factory: Callable[..., Settings], broker: TestBroker
) -> None:
    """Once the daemon has committed everything, the gauge reads end minus committed: zero."""
    settings = settings_factory()
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    await ensure_topics(settings, bootstrap)
    services = [f"svc-{n}" for n in range(12)]
    for service in services:
        await produce_json(bootstrap, settings.metric_topic, traffic(service=service, seconds=5))
    inputs = [
        TopicPartition(topic, partition)
        for topic in (settings.deploy_topic, settings.metric_topic)
        for partition in range(settings.topic_partitions)
    ]
    ends = await _end_offsets(bootstrap, inputs)
    async with running(settings) as daemon:
        registry = daemon.metrics.registry

        def gauge(tp: TopicPartition) -> float | None:
            labels = {"topic": tp.topic, "partition": str(tp.partition)}
            return registry.get_sample_value("guardian_consumer_lag", labels)

        committed: dict[TopicPartition, int] = {}

        async def caught_up() -> bool:
            committed.update(await _committed(bootstrap, settings.group_id, inputs))
            # >=: the embedded broker's end is the start of the last batch.
            return all(committed.get(tp, 0) >= end for tp, end in ends.items() if end)

        for _ in range(300):
            if await caught_up():
                break
        else:
            raise AssertionError(f"committed {committed}, ends {ends}")
        await eventually(lambda: all(gauge(tp) == 0 for tp in inputs), timeout_s=15)
    if broker.is_kafka:
        assert sum(ends.values()) == 5 * len(services)
        assert {tp: ends[tp] - committed.get(tp, 0) for tp in inputs} == dict.fromkeys(inputs, 0)

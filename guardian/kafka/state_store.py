"""Reads the compacted state changelog back: the latest value of every key.

The guardian writes a snapshot of a service's deploy state to the state topic
whenever it changes (a deploy event, a decision), keyed by service and
environment. A restarted replica, or one that is handed new partitions,
reads the topic to rebuild what it needs instead of trusting local memory.

Reading "to the end" does not rely on end offsets alone: some
Kafka-compatible brokers report the end as the start of the last batch. The
reader stops only once it is past the reported end *and* a fetch came back
empty.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from guardian.config.settings import Settings
from guardian.errors import SourceError
from guardian.kafka.client import connection_options


async def read_topic(
    settings: Settings, bootstrap_servers: str, topic: str, timeout_s: float = 60.0
) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of a topic, in order per partition, as (key, value)."""
    records: list[tuple[bytes | None, bytes | None]] = []
    await _scan(settings, bootstrap_servers, topic, timeout_s, records.extend)
    return records


async def read_latest(
    settings: Settings,
    bootstrap_servers: str,
    topic: str,
    timeout_s: float = 60.0,
    keep: Callable[[bytes], bool] | None = None,
) -> dict[bytes, bytes]:
    """Every key's latest value on a topic (tombstones remove the key).

    Folded as it is read, so memory holds one value per key, not every
    version the topic still has (compaction lags, and some brokers never
    compact). ``keep`` drops keys of no interest (another replica's services)
    before their values are held.
    """
    latest: dict[bytes, bytes] = {}

    def fold(batch: Iterable[tuple[bytes | None, bytes | None]]) -> None:
        for key, value in batch:
            if key is None or (keep is not None and not keep(key)):
                continue
            if value is None:
                latest.pop(key, None)
            else:
                latest[key] = value

    await _scan(settings, bootstrap_servers, topic, timeout_s, fold)
    return latest


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The partitions of ``topic`` as the cluster knows them now (none if it does not exist).

    A consumer's metadata covers only what it subscribed to, and ``topics()``
    fetches the whole cluster's metadata without keeping it, so the answer
    of that fetch is read here. (The embedded broker always lists every
    topic, which hid this; Apache Kafka does not.)
    """
    # aiokafka <0.15: its client is the only way to a fetched metadata answer, see above.
    cluster = await consumer._client.fetch_all_metadata()
    return [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())]


async def _scan(
    settings: Settings,
    bootstrap_servers: str,
    topic: str,
    timeout_s: float,
    each_batch: Callable[[Iterable[tuple[bytes | None, bytes | None]]], None],
) -> None:
    """Hand every record of a topic, batch by batch, to ``each_batch``; stop at its end."""
    consumer = AIOKafkaConsumer(
        **connection_options(settings, bootstrap_servers),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    try:
        await consumer.start()
        partitions = await topic_partitions(consumer, topic)
        if not partitions:
            return
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=10_000)
            for messages in batches.values():
                each_batch((message.key, message.value) for message in messages)
            if not batches:
                positions = [await consumer.position(tp) for tp in partitions]
                if all(pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)):
                    break
            if asyncio.get_running_loop().time() > deadline:
                raise SourceError(f"reading {topic} did not finish in {timeout_s:g}s")
    except KafkaError as exc:
        raise SourceError(f"cannot read {topic}: {exc}") from exc
    finally:
        await consumer.stop()

"""Commits in the background: in order, landed before a revocation or a stop, errors raised.

The consume loop hands a batch's offsets to ``commit_next`` and goes on to
fetch and judge the next batch while the group coordinator answers (about
9 ms on Kafka 4). What must not change: a batch's offsets are committed
after its outputs, in order, and never lost to a rebalance or a shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from guardian.config.settings import Settings
from guardian.errors import SourceError
from guardian.kafka.admin import ensure_topics
from guardian.kafka.source import KafkaSource, Position, RawRecord
from tests.support.kafka import produce

pytestmark = pytest.mark.kafka


async def _committed(settings: Settings, topic: str) -> dict[int, int | None]:
    """The group's committed offset per partition of ``topic``, read by a bystander."""
    assert settings.bootstrap_servers
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=settings.group_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = range(settings.topic_partitions)
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in partitions}
    finally:
        await consumer.stop()


async def _read(source: KafkaSource, count: int) -> list[RawRecord]:
    records: list[RawRecord] = []
    for _ in range(100):
        records += await source.getmany(200)
        if len(records) >= count:
            return records
    raise AssertionError(f"read {len(records)} of {count} records")


def _next_offsets(records: list[RawRecord]) -> dict[Position, int]:
    return {(r.topic, r.partition): r.offset + 1 for r in records}


async def _started(settings_factory: Callable[..., Settings]) -> tuple[Settings, str]:
    settings = settings_factory(topic_partitions=1)
    assert settings.bootstrap_servers
    await ensure_topics(settings, settings.bootstrap_servers)
    records = [(b"k", b"v%d" % i) for i in range(6)]
    await produce(settings.bootstrap_servers, settings.metric_topic, records)
    return settings, settings.bootstrap_servers


async def test_commits_land_in_order_and_a_stop_waits_for_the_one_in_flight(
    settings_factory: Callable[..., Settings],
) -> None:
    """Two commits handed over back to back: the later one stands, even when stop follows."""
    settings, bootstrap = await _started(settings_factory)
    async with KafkaSource(settings, bootstrap, [settings.metric_topic]) as source:
        records = await _read(source, 6)
        await source.commit_next(_next_offsets(records[:3]))
        await source.commit_next(_next_offsets(records))
        # No settle_commits: leaving the group must not drop the commit in flight.
    assert await _committed(settings, settings.metric_topic) == {0: 6}


async def test_a_failed_commit_is_raised_by_the_next_hand_over(
    settings_factory: Callable[..., Settings],
) -> None:
    """An offset of a partition the member does not hold: the error reaches the loop."""
    settings, bootstrap = await _started(settings_factory)
    async with KafkaSource(settings, bootstrap, [settings.metric_topic]) as source:
        await _read(source, 6)
        await source.commit_next({("not-assigned", 0): 1})
        with pytest.raises(SourceError, match="not assigned"):
            await source.settle_commits()
        await source.settle_commits()  # raised once, then nothing is in flight


async def test_a_revocation_waits_for_the_commit_in_flight(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow commit is still in flight when a second member joins: the rebalance waits for it,
    so the partition's next owner starts after the batch instead of judging it again."""
    settings, bootstrap = await _started(settings_factory)
    settings = settings.model_copy(update={"session_timeout_ms": 6000})
    committed_when_assigned: list[dict[int, int | None]] = []
    armed = False  # the first assignment, before the commit, is not the one looked at

    async def on_assignment(parts: frozenset[Position]) -> None:
        if armed and parts:  # whichever member the partition goes to
            committed_when_assigned.append(await _committed(settings, settings.metric_topic))

    first = KafkaSource(settings, bootstrap, [settings.metric_topic], on_assignment)
    async with first:
        records = await _read(first, 6)
        real_commit = first.commit

        async def slow_commit(next_offsets: dict[Position, int]) -> None:
            await asyncio.sleep(1.0)
            await real_commit(next_offsets)

        monkeypatch.setattr(first, "commit", slow_commit)
        await first.commit_next(_next_offsets(records))
        armed = True
        second = KafkaSource(settings, bootstrap, [settings.metric_topic], on_assignment)
        async with second:
            deadline = asyncio.get_running_loop().time() + 60
            while not committed_when_assigned:
                assert asyncio.get_running_loop().time() < deadline, "no rebalance"
                await asyncio.gather(first.getmany(100), second.getmany(100))
            await first.settle_commits()
    assert committed_when_assigned[0] == {0: 6}

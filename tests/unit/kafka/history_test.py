"""Passing over history on a group's first start, against a stand-in consumer.

The broker paths are covered by tests/integration/kafka/history_integration_test.py;
this pins the answers the embedded broker never gives: Apache Kafka's
``offsets_for_times`` returns None for a partition with nothing at or after
the cutoff, and a partition the group has committed must be left alone.
"""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndTimestamp

from guardian.config.settings import Settings
from guardian.kafka.source import KafkaSource

OLD, NEW, DONE = (TopicPartition("metrics", p) for p in range(3))


class StandInConsumer:
    """Answers like Apache Kafka for three partitions: all history, half history, committed."""

    def __init__(self) -> None:
        self.seeks: dict[TopicPartition, int] = {}

    async def committed(self, tp: TopicPartition) -> int | None:
        return 7 if tp == DONE else None

    async def offsets_for_times(
        self, query: dict[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        assert DONE not in query
        return {OLD: None, NEW: OffsetAndTimestamp(40, 0)}

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 10)

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 90)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset


async def test_fresh_partitions_start_at_the_horizon_and_committed_ones_stay() -> None:
    """All-history partition → its end; half → the first recent record; committed → untouched."""
    source = KafkaSource(Settings(), "unused:9092", ["metrics"], history_horizon_ms=3_600_000)
    consumer = StandInConsumer()
    source._consumer = consumer
    await source._assignment_changed(frozenset((tp.topic, tp.partition) for tp in (OLD, NEW, DONE)))
    assert consumer.seeks == {OLD: 90, NEW: 40}
    assert source.skipped == (90 - 10) + (40 - 10)
    assert set(source._skip_before) == {OLD, NEW}


async def test_without_a_horizon_nothing_is_skipped() -> None:
    """``auto_offset_reset: latest`` (or no horizon) reads what the policy says."""
    source = KafkaSource(Settings(), "unused:9092", ["metrics"])
    consumer: Any = StandInConsumer()
    source._consumer = consumer
    await source._assignment_changed(frozenset({("metrics", 0)}))
    assert consumer.seeks == {}
    assert source.skipped == 0

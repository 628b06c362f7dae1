"""Kafka source: one consumer group over the input topics, batched, manual commits.

Records come out in batches (``getmany``); offsets are committed only when the
caller says the batch's outputs are acknowledged, so a crash re-delivers the
batch (at-least-once) rather than losing it. Because the caller commits
before asking for the next batch, nothing uncommitted is pending when a
rebalance revokes partitions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError

from guardian.config.settings import Settings
from guardian.errors import SourceError
from guardian.kafka.client import connection_options

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as taken from a transport, before decoding."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


Position = tuple[str, int]  # (topic, partition)


AssignmentCallback = Callable[[frozenset[Position]], Awaitable[None]]


class _AssignmentListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Keeps the current assignment; the callback runs inside the rebalance, before fetching."""

    def __init__(self, on_change: AssignmentCallback) -> None:
        self._on_change = on_change
        self._assigned: set[Position] = set()

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        # Reported, so the owner stops judging (and snapshotting) what it may lose;
        # what it keeps is restored from its own snapshots on assignment.
        self._assigned -= {(tp.topic, tp.partition) for tp in revoked}
        log.info("partitions_revoked", partitions=sorted(f"{t}-{p}" for t, p in self._assigned))
        await self._on_change(frozenset(self._assigned))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._assigned |= {(tp.topic, tp.partition) for tp in assigned}
        log.info("partitions_assigned", partitions=sorted(f"{t}-{p}" for t, p in self._assigned))
        await self._on_change(frozenset(self._assigned))


class KafkaSource:
    """Consumes the input topics as one member of the guardian's consumer group."""

    def __init__(
        self,
        settings: Settings,
        bootstrap_servers: str,
        topics: list[str],
        on_assignment: AssignmentCallback | None = None,
    ) -> None:
        self._settings = settings
        self._bootstrap = bootstrap_servers
        self._topics = topics
        self._on_assignment = on_assignment
        self._consumer: AIOKafkaConsumer | None = None
        self.assignment: frozenset[Position] = frozenset()

    async def _assignment_changed(self, assigned: frozenset[Position]) -> None:
        self.assignment = assigned
        if self._on_assignment is not None:
            await self._on_assignment(assigned)

    def partition_count(self, topic: str) -> int:
        """How many partitions a subscribed topic has (from the consumer's metadata)."""
        partitions = self._require().partitions_for_topic(topic)
        return len(partitions) if partitions else 0

    async def start(self) -> None:
        """Join the group (no records are fetched until ``getmany``)."""
        s = self._settings
        consumer = AIOKafkaConsumer(
            **connection_options(s, self._bootstrap),
            group_id=s.group_id,
            enable_auto_commit=False,
            auto_offset_reset=s.auto_offset_reset,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            isolation_level="read_uncommitted",
            # Range gives partition N of every input topic to the same member (the
            # topics have equal partition counts), so a service's deploys and metrics
            # are judged by one replica. aiokafka's default, round-robin, splits them.
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        try:
            await consumer.start()
            consumer.subscribe(self._topics, listener=_AssignmentListener(self._assignment_changed))
        except KafkaError as exc:
            await consumer.stop()
            raise SourceError(f"cannot start the Kafka consumer: {exc}") from exc
        self._consumer = consumer

    async def getmany(self, timeout_ms: int) -> list[RawRecord]:
        """The next batch across assigned partitions, in partition order."""
        consumer = self._require()
        try:
            batches = await consumer.getmany(
                timeout_ms=timeout_ms, max_records=self._settings.max_batch_records
            )
        except KafkaError as exc:
            raise SourceError(f"fetch failed: {exc}") from exc
        return [
            RawRecord(tp.topic, tp.partition, m.offset, m.key, m.value or b"", m.timestamp)
            for tp, messages in batches.items()
            for m in messages
        ]

    async def commit(self, next_offsets: dict[Position, int]) -> None:
        """Commit, per partition, the offset of the next record to read."""
        if not next_offsets:
            return
        consumer = self._require()
        try:
            await consumer.commit(
                {TopicPartition(t, p): offset for (t, p), offset in next_offsets.items()}
            )
        except KafkaError as exc:
            raise SourceError(f"commit failed: {exc}") from exc

    async def lag(self) -> dict[Position, int]:
        """Records behind the end of each assigned partition (from the broker's end offsets)."""
        consumer = self._require()
        partitions = list(consumer.assignment())
        if not partitions:
            return {}
        try:
            ends = await consumer.end_offsets(partitions)
            result: dict[Position, int] = {}
            for tp in partitions:
                position = await consumer.position(tp)
                result[(tp.topic, tp.partition)] = max(0, ends[tp] - position)
        except KafkaError as exc:
            raise SourceError(f"cannot read end offsets: {exc}") from exc
        return result

    def _require(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise SourceError("the Kafka source is not started", retriable=False)
        return self._consumer

    async def stop(self) -> None:
        """Leave the group; safe to call twice."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def __aenter__(self) -> KafkaSource:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

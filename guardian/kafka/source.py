"""Kafka source: one consumer group over the input topics, batched, manual commits.

Records come out in batches (``getmany``); offsets are committed only when the
caller says the batch's outputs are acknowledged, so a crash re-delivers the
batch (at-least-once) rather than losing it. Because the caller commits
before asking for the next batch, nothing uncommitted is pending when a
rebalance revokes partitions.

A group's very first start (no committed offset for a partition) begins at
the earliest retained record, because deploy history and baselines live
there. With ``history_horizon_ms`` the source passes quickly over what is
older than that: it seeks to the first record of the horizon
(``offsets_for_times``) and, where a broker answers that imprecisely, drops
records whose Kafka timestamp is older without handing them on (their
offsets are committed with the next batch). Once a partition reaches the
horizon, every record is handed on again.

A fetch or commit that fails with a retriable Kafka error is retried with
backoff for up to ``connect_timeout_s``; then (or at once, for an error that
retrying cannot fix) it raises a non-retriable ``SourceError`` that ends the
daemon. A commit refused because the group rebalanced is not retried (the
rebalance waits for the caller, who holds its lock): it is logged, and
whoever owns the partitions next reads the batch again (at-least-once).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError

from guardian.config.settings import Settings
from guardian.errors import SourceError
from guardian.kafka.client import connection_options

log = structlog.get_logger(__name__)

RETRY_INITIAL_S = 0.2
RETRY_MAX_S = 5.0
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as taken from a transport, before decoding."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int
    # Kafka headers, for CloudEvents binary mode (``ce_*``) and structured mode (content-type).
    headers: tuple[tuple[str, bytes], ...] = ()


Position = tuple[str, int]  # (topic, partition)


AssignmentCallback = Callable[[frozenset[Position]], Awaitable[None]]


class _AssignmentListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Keeps the current assignment; the callback runs inside the rebalance, before fetching."""

    def __init__(
        self, on_change: AssignmentCallback, commits_landed: Callable[[], Awaitable[None]]
    ) -> None:
        self._on_change = on_change
        self._commits_landed = commits_landed
        self._assigned: set[Position] = set()

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        # Reported, so the owner stops judging (and snapshotting) what it may lose;
        # what it keeps is restored from its own snapshots on assignment.
        self._assigned -= {(tp.topic, tp.partition) for tp in revoked}
        log.info("partitions_revoked", partitions=sorted(f"{t}-{p}" for t, p in self._assigned))
        await self._on_change(frozenset(self._assigned))
        # Still in the old generation: the batch judged last is committed before the
        # partitions move, so their next owner does not judge it again.
        await self._commits_landed()

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
        history_horizon_ms: int | None = None,
    ) -> None:
        self._settings = settings
        self._history_horizon_ms = history_horizon_ms
        # Per fresh partition: records with an older Kafka timestamp are skipped.
        self._skip_before: dict[TopicPartition, int] = {}
        self.skipped = 0
        # Of ``skipped``, those the seek passed over; the rest were dropped by timestamp.
        self.skipped_by_seek = 0
        self._bootstrap = bootstrap_servers
        self._topics = topics
        self._on_assignment = on_assignment
        self._consumer: AIOKafkaConsumer | None = None
        self.assignment: frozenset[Position] = frozenset()
        self._committing: asyncio.Task[None] | None = None  # see commit_next

    async def _assignment_changed(self, assigned: frozenset[Position]) -> None:
        gained = assigned - self.assignment
        self.assignment = assigned
        self._skip_before = {
            tp: t for tp, t in self._skip_before.items() if (tp.topic, tp.partition) in assigned
        }
        if gained and self._history_horizon_ms is not None:
            await self._pass_over_history(
                [TopicPartition(t, p) for t, p in gained], self._history_horizon_ms
            )
        if self._on_assignment is not None:
            await self._on_assignment(assigned)

    async def _pass_over_history(self, gained: list[TopicPartition], horizon_ms: int) -> None:
        """For partitions the group never committed: start at the history horizon."""
        consumer = self._require()
        cutoff = time.time_ns() // 1_000_000 - horizon_ms
        try:
            fresh = [tp for tp in gained if await consumer.committed(tp) is None]
            if not fresh:
                return
            found = await consumer.offsets_for_times(dict.fromkeys(fresh, cutoff))
            starts = await consumer.beginning_offsets(fresh)
            # No record at or after the cutoff: the whole partition is history.
            ends = await consumer.end_offsets([tp for tp in fresh if found.get(tp) is None])
        except KafkaError as exc:
            log.warning("history_seek_failed", error=str(exc))
            return
        by_seek = 0
        for tp in fresh:
            position = found.get(tp)
            offset = position.offset if position is not None else ends[tp]
            consumer.seek(tp, offset)
            by_seek += max(0, offset - starts.get(tp, offset))
            self._skip_before[tp] = cutoff
        self.skipped += by_seek
        self.skipped_by_seek += by_seek
        log.info(
            "history_skipped_before",
            cutoff_ms=cutoff,
            partitions=sorted(f"{tp.topic}-{tp.partition}" for tp in fresh),
            skipped_by_seek=by_seek,
        )

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
            fetch_max_wait_ms=s.fetch_wait_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            isolation_level="read_uncommitted",
            # Range gives partition N of every input topic to the same member (the
            # topics have equal partition counts), so a service's deploys and metrics
            # are judged by one replica. aiokafka's default, round-robin, splits them.
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        try:
            await consumer.start()
            consumer.subscribe(
                self._topics,
                listener=_AssignmentListener(self._assignment_changed, self._commit_landed),
            )
        except KafkaError as exc:
            await consumer.stop()
            raise SourceError(f"cannot start the Kafka consumer: {exc}") from exc
        self._consumer = consumer

    async def getmany(self, timeout_ms: int) -> list[RawRecord]:
        """The next batch across assigned partitions, in partition order."""
        consumer = self._require()
        batches = await self._retrying(
            "fetch",
            lambda: consumer.getmany(
                timeout_ms=timeout_ms, max_records=self._settings.max_batch_records
            ),
        )
        if self._skip_before:
            batches = {tp: self._recent(tp, messages) for tp, messages in batches.items()}
        return [
            RawRecord(
                tp.topic,
                tp.partition,
                m.offset,
                m.key,
                m.value or b"",
                m.timestamp,
                tuple(m.headers) if m.headers else (),
            )
            for tp, messages in batches.items()
            for m in messages
        ]

    def _recent(self, tp: TopicPartition, messages: list[Any]) -> list[Any]:
        """Drop a fresh partition's records from before the horizon, until it is reached."""
        cutoff = self._skip_before.get(tp)
        if cutoff is None:
            return messages
        for index, message in enumerate(messages):
            if message.timestamp >= cutoff:
                del self._skip_before[tp]  # reached: from here on every record counts
                self.skipped += index
                return messages[index:]
        self.skipped += len(messages)
        return []

    async def commit(self, next_offsets: dict[Position, int]) -> None:
        """Commit, per partition, the offset of the next record to read."""
        if not next_offsets:
            return
        consumer = self._require()
        offsets = {TopicPartition(t, p): offset for (t, p), offset in next_offsets.items()}
        try:
            await self._retrying("commit", lambda: consumer.commit(offsets))
        except CommitFailedError:
            log.warning(
                "commit_refused_by_rebalance",
                partitions=sorted(f"{t}-{p}" for t, p in next_offsets),
                note="the group rebalanced; the partitions' next owner reads this batch again",
            )

    async def commit_next(self, next_offsets: dict[Position, int]) -> None:
        """Commit in the background, once the commit before it has landed.

        A commit takes a group-coordinator round trip (about 9 ms on Kafka 4,
        which lingers 5 ms to batch its writes); committing in the background
        lets the consume loop fetch and judge the next batch meanwhile, so a
        record arriving during a commit does not wait for it. Commits stay in
        order, each after its batch's outputs were acknowledged; the error of
        the one before is raised here. Call it while partitions cannot be
        revoked (the daemon holds its judge lock): a revocation waits for it.
        """
        await self.settle_commits()
        if next_offsets:
            self._committing = asyncio.create_task(self.commit(next_offsets), name="kafka-commit")

    async def settle_commits(self) -> None:
        """Wait for the commit in flight (``commit_next``) and raise its error."""
        task, self._committing = self._committing, None
        if task is not None:
            await task

    async def _commit_landed(self) -> None:
        """Wait for the commit in flight without taking its error (the consume loop gets it)."""
        if self._committing is not None:
            await asyncio.wait([self._committing])

    async def _retrying(self, operation: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run a fetch or commit, backing off on retriable Kafka errors for ``connect_timeout_s``.

        aiokafka retries some errors itself without end (a commit to a broker
        that is away), so the whole call, retries included, runs under the budget.
        """
        budget_s = self._settings.connect_timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_s
        delay = RETRY_INITIAL_S
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    return await call()
            except CommitFailedError:
                raise
            except TimeoutError as exc:
                raise SourceError(
                    f"Kafka {operation} did not succeed within connect_timeout_s={budget_s:g}s",
                    retriable=False,
                ) from exc
            except KafkaError as exc:
                if not exc.retriable:
                    raise SourceError(f"Kafka {operation} failed: {exc}", retriable=False) from exc
                if loop.time() + delay > deadline:
                    raise SourceError(
                        f"Kafka {operation} kept failing for connect_timeout_s={budget_s:g}s: "
                        f"{exc}",
                        retriable=False,
                    ) from exc
                log.warning("source_retry", operation=operation, error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def lag(self) -> dict[Position, int]:
        """Records behind the end of each assigned partition: end offset minus position.

        Exact on Apache Kafka (the end offset is the high watermark; between
        batches the position is the committed offset). The embedded broker
        reports the start of a partition's last batch as its end, so there the
        figure is low by up to a batch and would go negative: hence the floor.
        """
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
        """Leave the group, once the commit in flight has landed; safe to call twice."""
        task, self._committing = self._committing, None
        if task is not None:
            await asyncio.wait([task])
            if not task.cancelled() and task.exception() is not None:
                # The consume loop ended on another error before it could see this one.
                log.warning("commit_failed", error=str(task.exception()))
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

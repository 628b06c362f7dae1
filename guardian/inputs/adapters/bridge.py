"""Bridges from Kafka topics to the v1 input topics: OTLP metrics, and CDEvents on other topics.

A bridge runs inside ``guardian run`` as its own consumer group
(``<group_id>-<input>``: ``-otlp``, ``-cdevents``), so it shares nothing with
the judging consumer and any replica can take any of its partitions. Its
``RecordConverter`` says what each record becomes. For each polled batch:
convert every record (a record that cannot be read, or whose samples cannot
all be mapped, is dead-lettered once, with the reason and its bytes; its
mappable samples still count), write the events keyed by service and the
dead letters, wait for the broker's acknowledgements, and only then commit
the batch's offsets (at-least-once). A batch is converted once; when
writing fails, the same records are written again (backing off) until the
broker is back, or, while draining, until the drain deadline: the daemon's
(``run``'s ``drain_deadline``, the one its Kafka loop keeps), else the
grace period counted from when the bridge notices the stop.

``OtlpBridge`` reads ``otlp_topics`` into metric events. Its cumulative
state lives in this process, per series: the Collector's Kafka exporter
must send a resource's records to one partition
(``partition_metrics_by_resource_attributes: true``) so one bridge sees a
series' whole history. A series seen by another replica after a rebalance
starts from a baseline there. ``DeployBridge`` (``guardian.inputs.adapters.deploys``)
reads CDEvents that CD tools publish on topics of their own.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from guardian.config.settings import Settings
from guardian.delivery import Deadline, deliver_with_retry
from guardian.errors import DecodeError, SourceError
from guardian.inputs.adapters.accounting import InputAccount
from guardian.inputs.cumulative import SeriesState
from guardian.inputs.otlp import Encoding, OtlpConverter, decode_otlp
from guardian.inputs.records import EventSink, OutRecord, dead_letter_record, event_records
from guardian.kafka.client import connection_options
from guardian.metrics import GuardianMetrics

log = structlog.get_logger(__name__)

_CHUNK = 100  # records converted between two yields to the event loop


@dataclass
class BridgeBatch:
    """One polled batch, converted: what to write and what to commit once it is written."""

    records: list[OutRecord] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    taken: int = 0
    events: int = 0
    dead_letters: int = 0
    samples: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


class RecordConverter(Protocol):
    """What a bridge makes of each record: adds what to write to the batch, says why it is bad."""

    @property
    def input(self) -> str:
        """The input's name: the group's suffix and the metrics' ``input`` label."""
        ...

    @property
    def state(self) -> SeriesState | None:
        """The cumulative state it keeps, if any (for the series gauges)."""
        ...

    def convert(self, message: ConsumerRecord, batch: BridgeBatch) -> str | None:
        """Add the record's outputs to ``batch``; the dead letter's reason, or None."""
        ...


class TopicBridge:
    """Consumes ``topics`` and writes what ``records`` makes of them."""

    def __init__(
        self,
        settings: Settings,
        bootstrap_servers: str,
        topics: Sequence[str],
        records: RecordConverter,
        writer: EventSink,
        metrics: GuardianMetrics,
        *,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._settings = settings
        self._bootstrap = bootstrap_servers
        self.topics = list(topics)
        self._records = records
        self._writer = writer
        self._metrics = metrics
        self._account = InputAccount(metrics, records.input, records.state)
        self._clock_ms = clock_ms
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def group_id(self) -> str:
        """The bridge's own consumer group."""
        return f"{self._settings.group_id}-{self._records.input}"

    async def start(self) -> None:
        """Join the bridge's consumer group."""
        s = self._settings
        consumer = AIOKafkaConsumer(
            *self.topics,
            **connection_options(s, self._bootstrap),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset=s.auto_offset_reset,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            fetch_max_wait_ms=s.fetch_wait_ms,
            max_partition_fetch_bytes=16 * 1024 * 1024,
        )
        try:
            await consumer.start()
        except KafkaError as exc:
            await consumer.stop()
            raise SourceError(
                f"cannot start the {self._records.input} bridge's consumer: {exc}"
            ) from exc
        self._consumer = consumer
        log.info(
            "bridge_started",
            input=self._records.input,
            topics=self.topics,
            group_id=self.group_id,
        )

    async def run(
        self, stop: asyncio.Event, drain_deadline: Callable[[], Deadline | None] | None = None
    ) -> None:
        """Bridge until ``stop`` is set; the batch in hand is written and committed first.

        ``drain_deadline`` (the daemon's): once it gives a deadline, a write
        that fails is not retried past it (a non-retriable ``SinkError``).
        """
        consumer = self._require()
        deadline = drain_deadline or self._own_deadline(stop)
        while not stop.is_set():
            try:
                polled = await consumer.getmany(timeout_ms=200, max_records=500)
            except KafkaError as exc:
                raise SourceError(f"{self._records.input} fetch failed: {exc}") from exc
            if not polled:
                continue
            batch = await self._convert(polled)
            await self._deliver(batch, deadline)
            try:
                await consumer.commit(batch.offsets)
            except CommitFailedError:
                # The group rebalanced while the batch was delivered; its events are on
                # Kafka already, and the partitions' next owner converts it again (the
                # engine drops the duplicates). Ending the daemon would help nobody.
                log.warning(
                    "bridge_commit_refused_by_rebalance",
                    input=self._records.input,
                    partitions=sorted(f"{tp.topic}-{tp.partition}" for tp in batch.offsets),
                )
            except KafkaError as exc:
                raise SourceError(f"{self._records.input} commit failed: {exc}") from exc
            self._record(batch)

    async def _convert(self, polled: dict[TopicPartition, list[ConsumerRecord]]) -> BridgeBatch:
        s = self._settings
        batch = BridgeBatch()
        now_ms = self._clock_ms()
        done = 0
        for tp, messages in polled.items():
            for message in messages:
                self._convert_one(tp, message, batch, now_ms, s)
                done += 1
                if done % _CHUNK == 0:
                    await asyncio.sleep(0)  # converting is CPU work on the event loop
            if messages:
                batch.offsets[tp] = messages[-1].offset + 1
        return batch

    def _convert_one(
        self,
        tp: TopicPartition,
        message: ConsumerRecord,
        batch: BridgeBatch,
        now_ms: int,
        s: Settings,
    ) -> None:
        batch.taken += 1
        reason = self._records.convert(message, batch)
        if reason is None:
            return
        batch.dead_letters += 1
        topic, partition, offset = tp.topic, tp.partition, message.offset
        batch.records.append(
            dead_letter_record(
                topic=s.dlq_topic,
                source_topic=topic,
                partition=partition,
                offset=offset,
                key=message.key,
                original=message.value or b"",
                reason=reason,
                now_ms=now_ms,
                max_original_bytes=s.dlq_max_original_bytes,
            )
        )
        log.warning("dead_lettered", topic=topic, partition=partition, offset=offset, reason=reason)

    async def _deliver(self, batch: BridgeBatch, deadline: Callable[[], Deadline | None]) -> None:
        """Write the batch's records, retrying a broker that is away (until the drain's end)."""
        await deliver_with_retry(
            lambda: self._writer.write(batch.records), transport="otlp", deadline=deadline
        )

    def _own_deadline(self, stop: asyncio.Event) -> Callable[[], Deadline | None]:
        """Without the daemon's deadline: the grace period from when the stop is first seen."""
        drain_ends: list[float] = []

        def deadline() -> Deadline | None:
            if not stop.is_set():
                return None
            if not drain_ends:
                drain_ends.append(time.monotonic() + self._settings.grace_period_s)
            spent = f"the grace period of the {self._records.input} bridge is spent"
            return Deadline(drain_ends[0], spent)

        return deadline

    def _record(self, batch: BridgeBatch) -> None:
        self._account.record(batch.samples, batch.events, batch.skipped)
        self._account.outcome("converted", batch.taken - batch.dead_letters)
        self._account.outcome("dead_lettered", batch.dead_letters)
        if batch.dead_letters:
            self._metrics.dead_letters.inc(batch.dead_letters)

    def _require(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise SourceError(f"the {self._records.input} bridge is not started", retriable=False)
        return self._consumer

    async def stop(self) -> None:
        """Leave the group; safe to call twice."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class OtlpRecords:
    """OTLP records (``otlp_encoding``) into metric events, through one ``OtlpConverter``."""

    input = "otlp"

    def __init__(
        self,
        converter: OtlpConverter,
        encoding: Encoding,
        metric_topic: str,
    ) -> None:
        self.converter = converter
        self._encoding = encoding
        self._topic = metric_topic

    @property
    def state(self) -> SeriesState:
        """The converter's cumulative state."""
        return self.converter.state

    def convert(self, message: ConsumerRecord, batch: BridgeBatch) -> str | None:
        """Decode and convert one record (its state committed at once: records come in order)."""
        try:
            request = decode_otlp(message.value or b"", self._encoding)
        except DecodeError as exc:
            batch.skipped["undecodable"] += 1
            return exc.reason
        conversion, state = self.converter.convert(request)
        state.commit()
        batch.records.extend(event_records(conversion.events, self._topic))
        batch.events += len(conversion.events)
        batch.samples += conversion.samples
        batch.skipped.update(conversion.skipped)
        return conversion.rejection_reason()


class OtlpBridge(TopicBridge):
    """The bridge of ``otlp_topics``: OTLP records in, metric events out."""

    def __init__(
        self,
        settings: Settings,
        bootstrap_servers: str,
        converter: OtlpConverter,
        writer: EventSink,
        metrics: GuardianMetrics,
        *,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        records = OtlpRecords(converter, settings.otlp_encoding, settings.metric_topic)
        super().__init__(
            settings,
            bootstrap_servers,
            settings.otlp_topics,
            records,
            writer,
            metrics,
            clock_ms=clock_ms,
        )
        self.converter = converter

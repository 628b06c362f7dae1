"""The manual rollback request log: a compacted Kafka topic every replica reads in full.

Each revision of a request is a record keyed ``request:<id>`` on the state
topic (compacted, so the newest revision of every request is kept). Every
replica reads the topic from the beginning at start, with no consumer group,
before it serves the API, then tails it: a request made on one replica is
visible on all, and pending requests survive restarts. Other keys on the
state topic belong to other parts of the guardian and are skipped.

``put`` writes through the producer (idempotent where the broker supports
it, see ``start_producer``) and updates the local view only after
the broker acknowledged the record (acks=all). ``KafkaOutputWriter`` writes
a manual step's command, audit and notification records on the same
producer and also returns only after their acknowledgement; it does not use
the pipeline's shared ``KafkaSink`` so its flushes never interleave with the
pipeline's (whose offset commits depend on its own flush).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from guardian.config.settings import Settings
from guardian.engine.decision import DeployInfo
from guardian.errors import SinkError, SourceError
from guardian.kafka.admin import compacted_topic_config, create_missing_topics
from guardian.kafka.client import connection_options, start_producer
from guardian.manual.policy import REQUEST_KEY_PREFIX
from guardian.manual.records import ManualOutput
from guardian.manual.requests import RollbackRequest
from guardian.manual.view import RequestView

log = structlog.get_logger(__name__)


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


class KafkaRequestLog:
    """Requests on a compacted topic; an async context manager whose ``start`` catches up."""

    def __init__(
        self, settings: Settings, bootstrap_servers: str, topic: str | None = None
    ) -> None:
        self._settings = settings
        self._bootstrap = bootstrap_servers
        self.topic = topic or settings.state_topic
        self.view = RequestView()
        self.deploys: dict[tuple[str, str], DeployInfo] = {}
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self.idempotent = False

    async def start(self) -> None:
        """Connect, create the topic if missing, and read it to its end."""
        options = connection_options(self._settings, self._bootstrap)
        consumer = AIOKafkaConsumer(
            **options,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
        )
        try:
            await consumer.start()
            self._consumer = consumer
            started = await start_producer(
                self._settings,
                self._bootstrap,
                client="request_log",
                linger_ms=self._settings.linger_ms,
            )
            self._producer, self.idempotent = started.producer, started.idempotent
            partitions = await self._partitions(consumer, started.producer)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while await _behind(consumer, ends):
                await self._poll(consumer, timeout_ms=200)
        except KafkaError as exc:
            await self.stop()
            raise SourceError(f"cannot read the request log {self.topic}: {exc}") from exc
        except BaseException:
            await self.stop()
            raise
        log.info("request_log_loaded", topic=self.topic, requests=len(self.view))

    async def _partitions(
        self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer
    ) -> list[TopicPartition]:
        if self.topic not in await consumer.topics():
            await self._create_topic()
        # The producer waits for a new topic's metadata (max_block_ms); the consumer would not.
        parts = await producer.partitions_for(self.topic)
        return [TopicPartition(self.topic, p) for p in sorted(parts)]

    async def _create_topic(self) -> None:
        s = self._settings
        await create_missing_topics(s, self._bootstrap, {self.topic: compacted_topic_config(s)})

    async def _poll(self, consumer: AIOKafkaConsumer, timeout_ms: int) -> None:
        batches = await consumer.getmany(timeout_ms=timeout_ms)
        for messages in batches.values():
            for message in messages:
                self._apply(message.key, message.value)

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None or value is None:
            return
        if b"\x00" in key:
            self._apply_deploy(key, value)
            return
        if not key.startswith(REQUEST_KEY_PREFIX.encode()):
            return
        try:
            req = RollbackRequest.from_dict(orjson.loads(value))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning(
                "request_record_invalid", topic=self.topic, key=key.decode(), error=str(exc)
            )
            return
        self.view.apply(req)

    def _apply_deploy(self, key: bytes, value: bytes) -> None:
        """Engine snapshots on the same topic tell every replica each service's deploy.

        A manual request can arrive at any replica, but only the replica that owns
        the service's partition judges it; this view lets the others find its deploy.
        """
        service, _, environment = key.decode(errors="replace").partition("\x00")
        try:
            data = orjson.loads(value).get("deploy")
            if data is None:
                return
            self.deploys[(service, environment)] = DeployInfo(
                deploy_id=data["deploy_id"],
                service=service,
                environment=environment,
                version=data["version"],
                previous_version=data.get("previous_version"),
                strategy=data["strategy"],
                component=data["component"],
                regions=tuple(data.get("reached") or data.get("regions") or ()),
                started_at_ms=data["started_at_ms"],
                status=data.get("status", "active"),
                completed_at_ms=data.get("completed_at_ms"),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return  # not a snapshot this version understands; the owner still judges it

    def deploy_of(self, service: str, environment: str) -> DeployInfo | None:
        """The deploy of a service as last snapshotted by whichever replica owns it."""
        return self.deploys.get((service, environment))

    async def tail(self) -> None:
        """Apply records other replicas write, until cancelled."""
        consumer = self._consumer
        if consumer is None:
            raise SourceError("the request log is not started", retriable=False)
        while True:
            try:
                await self._poll(consumer, timeout_ms=500)
            except KafkaError as exc:
                log.warning("request_log_read_failed", topic=self.topic, error=str(exc))
                await asyncio.sleep(1.0)

    async def send_acked(self, topic: str, key: bytes, value: bytes) -> None:
        """Write one record and return when the broker acknowledged it."""
        producer = self._producer
        if producer is None:
            raise SinkError("the request log is not started", retriable=False)
        try:
            future = await producer.send(topic, value=value, key=key)
            await future
        except KafkaError as exc:
            raise SinkError(f"cannot write to {topic}: {exc}") from exc

    async def put(self, req: RollbackRequest) -> None:
        """Write a revision of a request; the view shows it once the broker has it."""
        key = (REQUEST_KEY_PREFIX + req.id).encode()
        await self.send_acked(self.topic, key, orjson.dumps(req.to_dict()))
        self.view.apply(req)

    async def stop(self) -> None:
        """Disconnect; safe to call twice."""
        producer, self._producer = self._producer, None
        consumer, self._consumer = self._consumer, None
        if producer is not None:
            await producer.stop()
        if consumer is not None:
            await consumer.stop()

    async def __aenter__(self) -> KafkaRequestLog:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class KafkaOutputWriter:
    """Writes a manual step's outputs to their topics; returns once all are acknowledged."""

    def __init__(self, request_log: KafkaRequestLog, settings: Settings) -> None:
        self._log = request_log
        self._topics = {
            "command": settings.command_topic,
            "audit": settings.audit_topic,
            "notification": settings.notification_topic,
        }

    async def write(self, outputs: Sequence[ManualOutput]) -> None:
        """Write every output concurrently; SinkError if any was not acknowledged."""
        await asyncio.gather(
            *(self._log.send_acked(self._topics[o.role], o.key, o.value) for o in outputs)
        )

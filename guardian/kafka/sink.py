"""Kafka sink: writes commands, audit records, dead letters and outbox entries.

``send`` queues a record and returns at once; ``flush`` waits until the
broker acknowledged everything queued (acks=all). The pipeline commits its
input offsets only after ``flush`` returns, which is the at-least-once
promise. Command ids are deterministic, so a record re-sent after a crash is
recognisable downstream. The producer is idempotent where the broker grants
producer ids (``start_producer`` asks), so a retried batch is not written twice.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from guardian.config.settings import Settings
from guardian.errors import SinkError, SourceError
from guardian.kafka.client import start_producer

# Kafka's default max.message.bytes is 1 MB; stay below it with headroom.
MAX_OUTPUT_RECORD_BYTES = 1_000_000


class KafkaSink:
    """An acks=all producer with explicit flush."""

    def __init__(self, settings: Settings, bootstrap_servers: str) -> None:
        self._settings = settings
        self._bootstrap = bootstrap_servers
        self._producer: AIOKafkaProducer | None = None
        self._pending: list[asyncio.Future[object]] = []
        self.idempotent = False

    async def start(self) -> None:
        """Connect the producer (acks=all, idempotent where the broker supports it)."""
        try:
            started = await start_producer(
                self._settings,
                self._bootstrap,
                client="sink",
                linger_ms=self._settings.linger_ms,
                max_request_size=MAX_OUTPUT_RECORD_BYTES + 64 * 1024,
                compression_type=None,
            )
        except (KafkaError, SourceError) as exc:
            raise SinkError(f"cannot start the Kafka producer: {exc}") from exc
        self._producer, self.idempotent = started.producer, started.idempotent

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Queue one record; its acknowledgement is awaited by ``flush``."""
        if self._producer is None:
            raise SinkError("the Kafka sink is not started", retriable=False)
        if len(value) > MAX_OUTPUT_RECORD_BYTES:
            raise SinkError(
                f"record of {len(value)} bytes for {topic} is too large", retriable=False
            )
        try:
            future = await self._producer.send(topic, value=value, key=key, headers=headers)
        except KafkaError as exc:
            raise SinkError(f"cannot queue a record for {topic}: {exc}") from exc
        self._pending.append(future)

    async def flush(self) -> None:
        """Wait until every record queued so far is acknowledged; raise SinkError if any failed.

        Safe with several callers (the consume loop, hot reload): each waits on
        what was queued before its call and leaves the others' futures alone.
        """
        pending = list(self._pending)
        if not pending:
            return
        results = await asyncio.gather(*pending, return_exceptions=True)
        self._pending = [future for future in self._pending if not future.done()]
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise SinkError(f"{len(failures)} record(s) not acknowledged: {failures[0]}")

    async def stop(self) -> None:
        """Flush what is queued and disconnect; safe to call twice."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> KafkaSink:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

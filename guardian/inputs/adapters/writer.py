"""The producer both inputs write their converted metric events (and dead letters) with.

``write`` queues a set of records and returns once the broker acknowledged
every one of them (acks=all, idempotent where the broker allows), or raises
a retriable ``SinkError``. Each caller waits for its own records only, so a
remote-write request is answered as soon as its events are on Kafka,
whatever else is in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from guardian.config.settings import Settings
from guardian.errors import SinkError, SourceError
from guardian.inputs.records import OutRecord
from guardian.kafka.client import start_producer


class EventWriter:
    """An acks=all producer whose ``write`` waits for exactly the records it was given."""

    def __init__(self, settings: Settings, bootstrap_servers: str) -> None:
        self._settings = settings
        self._bootstrap = bootstrap_servers
        self._producer: AIOKafkaProducer | None = None

    @property
    def ready(self) -> bool:
        """Whether records can be written now."""
        return self._producer is not None

    async def start(self) -> None:
        """Connect the producer."""
        try:
            started = await start_producer(
                self._settings, self._bootstrap, client="inputs", linger_ms=self._settings.linger_ms
            )
        except (KafkaError, SourceError) as exc:
            raise SinkError(f"cannot start the inputs' Kafka producer: {exc}") from exc
        self._producer = started.producer

    async def write(self, records: Sequence[OutRecord]) -> None:
        """Write records and wait for their acknowledgements; SinkError if any is not."""
        producer = self._producer
        if producer is None:
            raise SinkError("the inputs' Kafka producer is not started")
        try:
            futures = [
                await producer.send(record.topic, value=record.value, key=record.key)
                for record in records
            ]
        except KafkaError as exc:
            raise SinkError(f"cannot queue converted events: {exc}") from exc
        results = await asyncio.gather(*futures, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise SinkError(
                f"{len(failures)} of {len(records)} records not acknowledged: {failures[0]}"
            )

    async def stop(self) -> None:
        """Flush and disconnect; safe to call twice."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> EventWriter:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

"""The durable notification outbox on Kafka: consume entries, commit only what is delivered.

The notifier is its own consumer group (``<group_id>.notifier``) on the
notification topic, so it keeps its own offsets: an entry is committed only
when it and every entry before it in its partition were delivered to every
destination or failed permanently (``OffsetTracker``). A notification decided
while Slack or SMTP is down stays uncommitted and is delivered when they come
back, also after a restart.

``StateStore`` keeps the notifier's per-incident state (Slack thread ``ts``,
delivered ids) as records keyed ``notifier|…`` on the compacted state topic and
reads them back at start, so threads and dedup survive restarts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType

import orjson
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from guardian.config.settings import Settings
from guardian.errors import SinkError, SourceError
from guardian.kafka.client import start_producer
from guardian.kafka.source import KafkaSource, Position
from guardian.kafka.state_store import read_latest

log = structlog.get_logger(__name__)

STATE_KEY_PREFIX = b"notifier|"


@dataclass
class Slot:
    """One tracked outbox entry: its offset and how many deliveries are still running."""

    offset: int
    remaining: int


@dataclass
class OffsetTracker:
    """Which outbox offsets may be committed: per partition, the first not yet finished."""

    _slots: dict[Position, deque[Slot]] = field(default_factory=dict)
    _ready: dict[Position, int] = field(default_factory=dict)

    def add(self, position: Position, offset: int, deliveries: int) -> Slot:
        """Track one entry that needs ``deliveries`` finished deliveries; return its token."""
        slot = Slot(offset, deliveries)
        self._slots.setdefault(position, deque()).append(slot)
        return slot

    @staticmethod
    def done(slot: Slot) -> None:
        """One delivery of the entry finished (sent, suppressed or failed permanently)."""
        slot.remaining -= 1

    @property
    def pending(self) -> int:
        """Entries not yet finished."""
        return sum(1 for slots in self._slots.values() for s in slots if s.remaining > 0)

    def committable(self) -> dict[Position, int]:
        """Next offsets to commit per partition, for partitions that moved since the last call."""
        out: dict[Position, int] = {}
        for position, slots in self._slots.items():
            while slots and slots[0].remaining <= 0:
                out[position] = slots.popleft().offset + 1
        return out

    def forget(self, kept: frozenset[Position]) -> None:
        """Drop partitions no longer assigned (another replica re-reads them)."""
        for position in list(self._slots):
            if position not in kept:
                del self._slots[position]


def outbox_source(settings: Settings, bootstrap_servers: str) -> KafkaSource:
    """A consumer of the notification topic in the notifier's own consumer group."""
    notifier_settings = settings.model_copy(update={"group_id": f"{settings.group_id}.notifier"})
    return KafkaSource(notifier_settings, bootstrap_servers, [settings.notification_topic])


class StateStore:
    """Notifier state records on the compacted state topic: read all at start, write each change."""

    def __init__(self, settings: Settings, bootstrap_servers: str) -> None:
        self._settings = settings
        self._bootstrap = bootstrap_servers
        self._producer: AIOKafkaProducer | None = None
        self.idempotent = False

    async def start(self) -> None:
        """Connect the producer (acks=all, idempotent where the broker supports it)."""
        try:
            started = await start_producer(
                self._settings, self._bootstrap, client="notifier_state", linger_ms=0
            )
        except (KafkaError, SourceError) as exc:
            raise SinkError(f"cannot start the notifier's producer: {exc}") from exc
        self._producer, self.idempotent = started.producer, started.idempotent

    async def load(self) -> dict[bytes, bytes]:
        """Every ``notifier|…`` record of the state topic (latest per key), read to its end."""
        topic = self._settings.state_topic
        found = await read_latest(
            self._settings,
            self._bootstrap,
            topic,
            keep=lambda key: key.startswith(STATE_KEY_PREFIX),
        )
        log.info("notifier_state_loaded", topic=topic, records=len(found))
        return found

    async def write(self, topic: str, key: bytes, value: Mapping[str, object]) -> None:
        """Write one record and wait for the broker's acknowledgement."""
        if self._producer is None:
            raise SinkError("the notifier's producer is not started", retriable=False)
        try:
            future = await self._producer.send(topic, key=key, value=orjson.dumps(value))
            await future
        except KafkaError as exc:
            raise SinkError(f"cannot write to {topic}: {exc}") from exc

    async def stop(self) -> None:
        """Disconnect; safe to call twice."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> StateStore:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

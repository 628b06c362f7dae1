"""What the inputs write to Kafka: converted metric events and, per bad record, one dead letter.

A bad record is an OTLP record on Kafka (its origin: topic, partition,
offset) or a remote-write request (its origin: the HTTP path; it has no
offset, and only the first ``max_original_bytes`` of its body are kept).

Converted events go to the metric topic keyed by their service, exactly as
a producer of v1 events would write them, so partitioning, replicas, replay
and rules see no difference. Pure: building records, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson

from guardian.wire.events import MetricEvent, encode_event, event_key
from guardian.wire.records import DeadLetter, DeadLetterSource


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record to write."""

    topic: str
    key: bytes | None
    value: bytes


class EventSink(Protocol):
    """Where converted events go (``EventWriter``): ready or not, and a write that waits."""

    @property
    def ready(self) -> bool: ...

    async def write(self, records: Sequence[OutRecord]) -> None: ...


def event_records(events: Iterable[MetricEvent], topic: str) -> list[OutRecord]:
    """v1 metric events as records of the metric topic, keyed by service."""
    return [OutRecord(topic, event_key(event), encode_event(event)) for event in events]


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """Where an input's dead letters go, and how much of each original they keep."""

    topic: str
    max_original_bytes: int


def dead_letter_record(
    *,
    topic: str,
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    original: bytes,
    reason: str,
    now_ms: int,
    max_original_bytes: int,
) -> OutRecord:
    """The dead letter of one input record, with its origin, the reason and its bytes."""
    source = DeadLetterSource(
        transport="kafka", topic=source_topic, partition=partition, offset=offset
    )
    return _letter(topic, key, source, original, reason, now_ms, max_original_bytes)


def request_dead_letter(
    letters: DeadLetters, *, path: str, original: bytes, reason: str, now_ms: int
) -> OutRecord:
    """The dead letter of one HTTP request body (remote write): its path, the reason, its bytes."""
    source = DeadLetterSource(transport="http", topic=path)
    return _letter(
        letters.topic, None, source, original, reason, now_ms, letters.max_original_bytes
    )


def _letter(
    topic: str,
    key: bytes | None,
    source: DeadLetterSource,
    original: bytes,
    reason: str,
    now_ms: int,
    max_original_bytes: int,
) -> OutRecord:
    letter = DeadLetter.wrap(
        source=source,
        reason=reason,
        original=original,
        received_at_ms=now_ms,
        max_original_bytes=max_original_bytes,
    )
    return OutRecord(topic, key or b"", orjson.dumps(letter.model_dump(mode="json")))

"""Produce to and read from a real broker in tests, with deadlines instead of sleeps."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


def unique(prefix: str) -> str:
    """A name no other test uses (topics, groups), so tests share one broker safely."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes]],
    timestamp_ms: int | None = None,
) -> None:
    """Write records (key, value) and wait until the broker acknowledged them.

    ``timestamp_ms`` sets their Kafka timestamp (a backlog's records are old).
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=key, value=value, timestamp_ms=timestamp_ms)
            for key, value in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def produce_json(
    bootstrap: str,
    topic: str,
    events: Iterable[dict[str, Any]],
    timestamp_ms: int | None = None,
) -> None:
    """Write JSON events keyed by their service."""
    await produce(
        bootstrap,
        topic,
        ((str(e.get("service", "")).encode(), orjson.dumps(e)) for e in events),
        timestamp_ms,
    )


async def read_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[dict[str, Any]]], bool],
    timeout_s: float = 30.0,
) -> list[dict[str, Any]]:
    """Read a topic from the start until ``done(records)`` or the deadline; return what was read."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    seen: list[dict[str, Any]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline and not done(seen):
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                seen.extend(orjson.loads(m.value) for m in messages)
        return seen
    finally:
        await consumer.stop()


async def read_for(bootstrap: str, topic: str, seconds: float) -> list[dict[str, Any]]:
    """Everything on a topic after waiting ``seconds`` (to assert that something did NOT happen)."""
    return await read_until(bootstrap, topic, lambda _seen: False, timeout_s=seconds)

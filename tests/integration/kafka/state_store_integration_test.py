"""Reading the compacted state topic back on a real broker."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from guardian.config.settings import Settings
from guardian.errors import SourceError
from guardian.kafka.admin import ensure_topics
from guardian.kafka.state_store import read_latest
from tests.support.brokers import TestBroker
from tests.support.kafka import produce

pytestmark = pytest.mark.kafka


def _keyless(broker: TestBroker) -> list[tuple[bytes | None, bytes]]:
    """A record without key, which the reader skips; Apache Kafka refuses one on a compacted
    topic, so only the embedded broker, which takes it, gets one."""
    return [] if broker.is_kafka else [(None, b"ignored")]


async def test_latest_value_per_key_wins_and_tombstones_delete(
    settings_factory: Callable[..., Settings], broker: TestBroker
) -> None:
    """The reader returns each key's newest value and forgets keys whose last record is null."""
    settings = settings_factory()
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    await ensure_topics(settings, bootstrap)
    await produce(
        bootstrap,
        settings.state_topic,
        [(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"c", b"1"), *_keyless(broker)],
    )
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(settings.state_topic, key=b"c", value=None)
    finally:
        await producer.stop()
    latest = await read_latest(settings, bootstrap, settings.state_topic)
    assert latest == {b"a": b"2", b"b": b"1"}
    only_a = await read_latest(settings, bootstrap, settings.state_topic, keep=lambda k: k == b"a")
    assert only_a == {b"a": b"2"}


async def test_missing_topic_reads_as_empty(settings_factory: Callable[..., Settings]) -> None:
    """A state topic that does not exist yet means no state, not an error."""
    settings = settings_factory()
    assert settings.bootstrap_servers
    assert await read_latest(settings, settings.bootstrap_servers, "absent-topic-xyz") == {}


async def test_unreachable_broker_is_a_source_error(
    settings_factory: Callable[..., Settings],
) -> None:
    """A broker that is not there is reported as a SourceError."""
    from guardian.ports import free_port

    settings = settings_factory(bootstrap_servers=f"127.0.0.1:{free_port()}")
    with pytest.raises(SourceError):
        await read_latest(settings, f"127.0.0.1:{free_port()}", "t", timeout_s=2)

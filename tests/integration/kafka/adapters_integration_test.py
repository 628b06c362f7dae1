"""Kafka adapters on a real broker: topic creation, unreachable brokers, sink and source edges."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from guardian.config.settings import Settings
from guardian.errors import SinkError, SourceError
from guardian.kafka.admin import ensure_topics, guardian_topics
from guardian.kafka.embedded import EmbeddedBroker
from guardian.kafka.sink import MAX_OUTPUT_RECORD_BYTES, KafkaSink
from guardian.kafka.source import KafkaSource
from guardian.ports import free_port
from tests.support.kafka import produce

pytestmark = pytest.mark.kafka


async def test_missing_topics_are_created_once(settings_factory: Callable[..., Settings]) -> None:
    """The first start creates every topic; the next finds them and creates none."""
    settings = settings_factory()
    assert settings.bootstrap_servers
    created = await ensure_topics(settings, settings.bootstrap_servers)
    assert sorted(created) == sorted(guardian_topics(settings))
    assert guardian_topics(settings)[settings.state_topic]["cleanup.policy"] == "compact"
    assert await ensure_topics(settings, settings.bootstrap_servers) == []


async def test_unreachable_broker_gives_up_after_the_budget(
    settings_factory: Callable[..., Settings],
) -> None:
    """A broker nobody listens on is retried, then reported as a non-retriable SourceError."""
    address = f"127.0.0.1:{free_port()}"
    settings = settings_factory(bootstrap_servers=address, connect_timeout_s=1)
    with pytest.raises(SourceError, match="unreachable") as info:
        await ensure_topics(settings, address)
    assert not info.value.retriable


async def test_sink_refuses_use_before_start_and_oversized_records(
    settings_factory: Callable[..., Settings],
) -> None:
    """Sending before start or sending a record over the broker limit is a clear SinkError."""
    settings = settings_factory()
    assert settings.bootstrap_servers
    sink = KafkaSink(settings, settings.bootstrap_servers)
    with pytest.raises(SinkError, match="not started"):
        await sink.send("t", b"x")
    async with sink:
        with pytest.raises(SinkError, match="too large"):
            await sink.send("t", b"x" * (MAX_OUTPUT_RECORD_BYTES + 1))
        await sink.flush()  # nothing queued: returns at once
    await sink.stop()  # a second stop is harmless


async def test_source_reports_lag_and_commits(settings_factory: Callable[..., Settings]) -> None:
    """The source reads a batch, commits it, and reports per-partition lag as a number."""
    settings = settings_factory()
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    await ensure_topics(settings, bootstrap)
    await produce(bootstrap, settings.metric_topic, [(b"k", b"v%d" % i) for i in range(5)])
    source = KafkaSource(settings, bootstrap, [settings.metric_topic])
    with pytest.raises(SourceError, match="not started"):
        await source.getmany(10)
    async with source:
        records: list[object] = []
        for _ in range(50):
            records += await source.getmany(200)
            if len(records) >= 5:
                break
        assert len(records) == 5
        await source.commit({})
        await source.commit({(settings.metric_topic, records[-1].partition): 5})  # type: ignore[attr-defined]
        lag = await source.lag()
        assert all(value >= 0 for value in lag.values())
        assert source.partition_count(settings.metric_topic) == settings.topic_partitions


async def test_embedded_broker_starts_and_stops_twice_safely() -> None:
    """The embedded broker listens once started and can be stopped twice."""
    broker = EmbeddedBroker()
    async with broker:
        assert broker.pid is not None
    await broker.stop()
    assert broker.pid is None

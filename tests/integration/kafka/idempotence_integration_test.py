"""Idempotent producers where the broker grants producer ids, decided by asking it.

Apache Kafka answers InitProducerId with a producer id, so every producer the
guardian opens (the sink, the notifier's state store, the request log) is
idempotent there. The embedded broker lists InitProducerId in its ApiVersions
but answers it with an error, so there the producers are plain, and each says
so in one log line.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from guardian.config.settings import Settings
from guardian.errors import SinkError
from guardian.kafka.admin import ensure_topics
from guardian.kafka.client import idempotence_refusal
from guardian.kafka.outbox import StateStore
from guardian.kafka.request_log import KafkaRequestLog
from guardian.kafka.sink import KafkaSink
from guardian.ports import free_port
from tests.support.brokers import TestBroker
from tests.support.kafka import read_until

pytestmark = pytest.mark.kafka


async def test_the_broker_is_asked_whether_it_grants_producer_ids(
    settings_factory: Callable[..., Settings], broker: TestBroker
) -> None:
    """Apache Kafka grants a producer id; the embedded broker's refusal names InitProducerId."""
    settings = settings_factory()
    assert settings.bootstrap_servers
    refusal = await idempotence_refusal(settings, settings.bootstrap_servers)
    if broker.is_kafka:
        assert refusal is None
    else:
        assert refusal is not None
        assert "InitProducerId" in refusal


async def test_every_producer_is_idempotent_on_kafka_and_plain_with_a_reason_elsewhere(
    settings_factory: Callable[..., Settings], broker: TestBroker
) -> None:
    """Sink, notifier state and request log share the decision; off is logged once per producer."""
    settings = settings_factory()
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    await ensure_topics(settings, bootstrap)
    with capture_logs() as logs:
        async with (
            KafkaSink(settings, bootstrap) as sink,
            StateStore(settings, bootstrap) as store,
            KafkaRequestLog(settings, bootstrap) as requests,
        ):
            assert [sink.idempotent, store.idempotent, requests.idempotent] == [broker.is_kafka] * 3
            await sink.send(settings.audit_topic, b'{"n": 1}', key=b"k")
            await sink.flush()
            await store.write(settings.audit_topic, b"k", {"n": 2})
    off = [entry for entry in logs if entry["event"] == "producer_idempotence_off"]
    if broker.is_kafka:
        assert off == []
    else:
        assert sorted(entry["client"] for entry in off) == [
            "notifier_state",
            "request_log",
            "sink",
        ]
        assert all("InitProducerId" in entry["reason"] for entry in off)
    written = await read_until(bootstrap, settings.audit_topic, lambda seen: len(seen) >= 2)
    assert sorted(record["n"] for record in written) == [1, 2]


async def test_a_producer_without_a_broker_is_a_retriable_sink_error(
    settings_factory: Callable[..., Settings],
) -> None:
    """Nobody answers the producer-id question: the sink reports the broker away, retriable."""
    address = f"127.0.0.1:{free_port()}"
    settings = settings_factory(bootstrap_servers=address)
    with pytest.raises(SinkError, match="no Kafka broker") as failed:
        await KafkaSink(settings, address).start()
    assert failed.value.retriable

"""The Kafka request log: catch-up at start, skipping foreign and broken records, guarded use."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from guardian.api.component import ManualRollbacks, wall_clock_ms
from guardian.config.settings import Settings
from guardian.errors import SinkError, SourceError
from guardian.kafka.request_log import KafkaRequestLog
from guardian.kafka.sink import KafkaSink
from guardian.manual.policy import ManualPolicy
from guardian.manual.requests import open_request
from guardian.manual.tokens import Identity
from guardian.metrics import GuardianMetrics
from tests.support.brokers import TestBroker
from tests.support.kafka import produce
from tests.support.manual import Lookup, make_deploy

pytestmark = pytest.mark.kafka

ALICE = Identity("alice", frozenset({"SRE"}))


async def test_start_reads_valid_requests_and_skips_the_rest(
    settings_factory: Callable[..., Settings], broker: TestBroker
) -> None:
    """Records of other parts, tombstones and malformed requests are skipped at catch-up."""
    settings = settings_factory()
    bootstrap = settings.bootstrap_servers
    assert bootstrap is not None
    req = open_request(
        request_id="mr-1",
        deploy=make_deploy(),
        reason="r",
        who=ALICE,
        policy=ManualPolicy(),
        now_ms=wall_clock_ms(),
    )
    async with KafkaRequestLog(settings, bootstrap) as log:  # creates the topic
        await log.put(req)
    await produce(
        bootstrap,
        settings.state_topic,
        [
            (b"deploy:checkout", b"{}"),
            (b"request:mr-bad", b"not json"),
            (b"request:mr-bad2", orjson.dumps({"id": "x"})),
            # Apache Kafka refuses a keyless record on a compacted topic.
            *([] if broker.is_kafka else [(None, b"{}")]),
        ],
    )
    async with KafkaRequestLog(settings, bootstrap) as fresh:
        assert len(fresh.view) == 1
        assert fresh.view.get("mr-1") == req
        await fresh.stop()  # idempotent


async def test_unstarted_log_refuses_use(settings_factory: Callable[..., Settings]) -> None:
    """Tailing or writing before start is a clear, non-retriable error."""
    settings = settings_factory()
    log = KafkaRequestLog(settings, "127.0.0.1:1")
    with pytest.raises(SourceError):
        await log.tail()
    with pytest.raises(SinkError) as err:
        await log.send_acked("t", b"k", b"v")
    assert not err.value.retriable


async def test_manual_rollbacks_without_tokens_answers_401_to_all(
    settings_factory: Callable[..., Settings],
) -> None:
    """Without a tokens file the part starts, warns, and knows no token."""
    settings = settings_factory()
    bootstrap = settings.bootstrap_servers
    assert bootstrap is not None
    async with (
        KafkaSink(settings, bootstrap) as sink,
        ManualRollbacks(settings, bootstrap, sink, Lookup(), GuardianMetrics()) as manual,
    ):
        assert manual.tokens.identify("anything") is None

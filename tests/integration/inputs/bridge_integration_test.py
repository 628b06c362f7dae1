"""The OTLP bridge on its own over a real broker: writes retried, then committed once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import pytest

from guardian.config.settings import Settings
from guardian.delivery import Deadline
from guardian.errors import SinkError
from guardian.inputs.adapters.bridge import OtlpBridge
from guardian.inputs.adapters.writer import EventWriter
from guardian.inputs.cumulative import SeriesState
from guardian.inputs.mapping import InputsFile, compile_mapping
from guardian.inputs.otlp import OtlpConverter
from guardian.inputs.records import OutRecord
from guardian.kafka.admin import create_missing_topics
from guardian.metrics import GuardianMetrics
from tests.integration.inputs.support import committed_total, read_keyed
from tests.support.kafka import produce, unique
from tests.unit.inputs.builders import CANARY, T0_MS, export, histogram

pytestmark = pytest.mark.kafka


class FlakySink:
    """The real writer behind a broker that refuses the first ``failures`` writes."""

    def __init__(self, writer: EventWriter, failures: int) -> None:
        self._writer = writer
        self.failures = failures
        self.attempts = 0

    @property
    def ready(self) -> bool:
        return self._writer.ready

    async def write(self, records: Sequence[OutRecord]) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise SinkError("broker away (test)")
        await self._writer.write(records)


async def test_a_batch_is_retried_until_written_then_committed_once(
    settings_factory: Callable[..., Settings],
) -> None:
    """Two refused writes, then the events arrive once and the offset is committed."""
    topic = unique("otlp")
    settings = settings_factory(otlp_topics=[topic])
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    await create_missing_topics(settings, bootstrap, {topic: {}, settings.metric_topic: {}})
    record = export(
        CANARY,
        [
            histogram(
                [({"http.response.status_code": 500}, 4, [4] + [0] * 14)], at_ms=T0_MS, delta=True
            )
        ],
    ).SerializeToString()
    await produce(bootstrap, topic, [(b"r", record)])
    converter = OtlpConverter(compile_mapping(InputsFile().otlp), SeriesState())
    stop = asyncio.Event()
    async with EventWriter(settings, bootstrap) as writer:
        sink = FlakySink(writer, failures=2)
        async with OtlpBridge(settings, bootstrap, converter, sink, GuardianMetrics()) as bridge:
            task = asyncio.create_task(bridge.run(stop))
            events = await read_keyed(bootstrap, settings.metric_topic, 1)
            deadline = asyncio.get_running_loop().time() + 20
            while await committed_total(bootstrap, bridge.group_id, topic) < 1:
                assert asyncio.get_running_loop().time() < deadline, "never committed"
                await asyncio.sleep(0.2)
            stop.set()
            await asyncio.wait_for(task, 20)
    assert sink.attempts == 3
    assert [
        (key, event["values"]["requests"], event["values"]["errors"]) for key, event in events
    ] == [(b"checkout", 4.0, 4.0)]


async def test_a_drain_gives_up_on_a_broker_that_never_comes_back(
    settings_factory: Callable[..., Settings],
) -> None:
    """While draining, retries end with the grace period: a non-retriable SinkError."""
    topic = unique("otlp")
    settings = settings_factory(otlp_topics=[topic], grace_period_s=0.5)
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    await create_missing_topics(settings, bootstrap, {topic: {}})
    await produce(bootstrap, topic, [(b"r", b"\x89 garbage: one dead letter to write")])
    converter = OtlpConverter(compile_mapping(InputsFile().otlp), SeriesState())
    stop = asyncio.Event()
    async with EventWriter(settings, bootstrap) as writer:
        sink = FlakySink(writer, failures=10**6)
        async with OtlpBridge(settings, bootstrap, converter, sink, GuardianMetrics()) as bridge:
            task = asyncio.create_task(bridge.run(stop))
            deadline = asyncio.get_running_loop().time() + 30
            while sink.attempts == 0:
                assert asyncio.get_running_loop().time() < deadline, "nothing polled"
                await asyncio.sleep(0.05)
            stop.set()
            with pytest.raises(SinkError, match="grace period") as caught:
                await asyncio.wait_for(task, 20)
    assert not caught.value.retriable
    assert await committed_total(bootstrap, bridge.group_id, topic) == 0


async def test_a_drain_ends_at_the_daemons_deadline_not_a_grace_period_of_its_own(
    settings_factory: Callable[..., Settings],
) -> None:
    """Given the daemon's drain deadline, retries end there even with a long grace period."""
    topic = unique("otlp")
    settings = settings_factory(otlp_topics=[topic], grace_period_s=60)
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    await create_missing_topics(settings, bootstrap, {topic: {}})
    await produce(bootstrap, topic, [(b"r", b"\x89 garbage: one dead letter to write")])
    converter = OtlpConverter(compile_mapping(InputsFile().otlp), SeriesState())
    stop = asyncio.Event()
    drain: list[Deadline] = []
    async with EventWriter(settings, bootstrap) as writer:
        sink = FlakySink(writer, failures=10**6)
        async with OtlpBridge(settings, bootstrap, converter, sink, GuardianMetrics()) as bridge:
            task = asyncio.create_task(bridge.run(stop, lambda: drain[0] if drain else None))
            deadline = asyncio.get_running_loop().time() + 30
            while sink.attempts == 0:
                assert asyncio.get_running_loop().time() < deadline, "nothing polled"
                await asyncio.sleep(0.05)
            started = time.monotonic()
            drain.append(Deadline(started + 0.5, "the daemon's grace period is spent"))
            stop.set()
            with pytest.raises(SinkError, match="daemon's grace period") as caught:
                await asyncio.wait_for(task, 5)
            assert time.monotonic() - started < 3
    assert not caught.value.retriable
    assert await committed_total(bootstrap, bridge.group_id, topic) == 0

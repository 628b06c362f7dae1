"""A stalled producer: consumption pauses, nothing is committed, and it all catches up after.

The stall is injected at the guardian's own sink (every send waits on a
gate), the broker and the consumer group are real. While the gate is shut
the daemon may hold one batch in hand, and nothing more: the consume loop
takes the next batch only after the last one's outputs are acknowledged,
which is what keeps memory bounded when the output side is slow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer

from guardian.config.settings import Settings
from guardian.kafka.sink import KafkaSink
from guardian.kafka.state_store import topic_partitions
from tests.integration.daemon.daemon_integration_test import running
from tests.support.events import deploy, traffic
from tests.support.kafka import produce_json, read_for, read_until
from tests.support.metrics import events_consumed
from tests.support.waiting import eventually

pytestmark = pytest.mark.kafka

_BATCH = 100


async def test_stalled_sink_pauses_consumption_and_commits_nothing(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While every send waits, one batch at most is taken and nothing is committed."""
    gate = asyncio.Event()
    gate.set()
    send = KafkaSink.send

    async def gated_send(self: KafkaSink, *args: object, **kwargs: object) -> None:
        await gate.wait()
        await send(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(KafkaSink, "send", gated_send)
    settings = settings_factory(max_batch_records=_BATCH)
    async with running(settings) as daemon:
        bootstrap = daemon.bootstrap_servers
        assert bootstrap
        committed_before = await _committed(bootstrap, settings)
        gate.clear()

        background = [e for s in range(20) for e in traffic(service=f"other-{s}", seconds=100)]
        await produce_json(bootstrap, settings.deploy_topic, [deploy(deploy_id="d-slow")])
        await produce_json(bootstrap, settings.metric_topic, traffic(seconds=150, error_rate=0.08))
        await produce_json(bootstrap, settings.metric_topic, background)
        total = 1 + 150 + len(background)

        await eventually(lambda: events_consumed(daemon.metrics.registry) > 0)
        await asyncio.sleep(3)  # time enough to read everything, were nothing holding it back
        held = events_consumed(daemon.metrics.registry)
        assert 0 < held <= _BATCH, f"{held} records taken while the sink was stalled"
        assert await _committed(bootstrap, settings) == committed_before
        assert await read_for(bootstrap, settings.command_topic, 1) == []

        gate.set()
        await eventually(lambda: events_consumed(daemon.metrics.registry) == total, timeout_s=60)
        commands = await read_until(bootstrap, settings.command_topic, bool, timeout_s=30)
        commands += await read_for(bootstrap, settings.command_topic, 2)
        await _wait_committed(bootstrap, settings, total)
    assert commands, "no rollback command once the sink came back"
    assert {c["command_id"] for c in commands} == {commands[0]["command_id"]}
    assert commands[0]["deploy_id"] == "d-slow"


async def _committed(bootstrap: str, settings: Settings) -> dict[tuple[str, int], int]:
    """The group's committed offsets on the input topics (asked without joining the group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=settings.group_id)
    await consumer.start()
    try:
        offsets = {}
        for topic in (settings.deploy_topic, settings.metric_topic):
            for tp in await topic_partitions(consumer, topic):
                offset = await consumer.committed(tp)
                offsets[(topic, tp.partition)] = offset if offset is not None else 0
        return offsets
    finally:
        await consumer.stop()


async def _wait_committed(
    bootstrap: str, settings: Settings, total: int, timeout_s: float = 30
) -> None:
    """Until the group's committed offsets, summed over the input partitions, reach ``total``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        offsets = await _committed(bootstrap, settings)
        if sum(max(offset, 0) for offset in offsets.values()) == total:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"committed {offsets}, expected {total} in all")
        await asyncio.sleep(0.2)

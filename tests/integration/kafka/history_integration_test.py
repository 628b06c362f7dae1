"""A group's first start passes over history older than the rules' horizon; later starts don't.

Records are produced with explicit Kafka timestamps, as a real backlog has
them. On Apache Kafka ``offsets_for_times`` finds the first recent record and
the seek passes over all of the history (the timestamp fallback drops
nothing); the embedded broker answers offset 0, so there the fallback drops
it all. The tests assert which path did the work on each broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from guardian.config.settings import Settings
from guardian.kafka.admin import ensure_topics
from guardian.kafka.source import KafkaSource, RawRecord
from tests.integration.daemon.daemon_integration_test import running
from tests.support.brokers import TestBroker
from tests.support.events import deploy, traffic
from tests.support.kafka import produce_json, read_for, read_until
from tests.support.waiting import eventually

pytestmark = pytest.mark.kafka

HOUR_MS = 3_600_000


async def _take(source: KafkaSource, count: int, timeout_s: float = 30) -> list[RawRecord]:
    taken: list[RawRecord] = []
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(taken) < count:
        assert asyncio.get_running_loop().time() < deadline, f"took {len(taken)} of {count}"
        taken += await source.getmany(timeout_ms=100)
    return taken


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def test_fresh_group_skips_old_records_and_a_committed_group_does_not(
    settings_factory: Callable[..., Settings], broker: TestBroker
) -> None:
    """50 records 3 h old are passed over on the first start; a restart after a commit reads all."""
    settings = settings_factory(topic_partitions=1)
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    await ensure_topics(settings, bootstrap)
    topic = settings.metric_topic
    await produce_json(bootstrap, topic, traffic(seconds=50), _now_ms() - 3 * HOUR_MS)
    await produce_json(bootstrap, topic, traffic(seconds=10), _now_ms())

    async with KafkaSource(settings, bootstrap, [topic], history_horizon_ms=HOUR_MS) as source:
        taken = await _take(source, 10)
        assert len(taken) == 10
        assert source.skipped == 50
        # Kafka: the seek lands on the first recent record. Embedded: it stays at 0.
        assert source.skipped_by_seek == (50 if broker.is_kafka else 0)
        assert min(r.offset for r in taken) == 50
        await source.commit({(topic, 0): taken[-1].offset + 1})

    # A producer whose clock lags: its records are old by timestamp but new to the group.
    await produce_json(bootstrap, topic, traffic(seconds=5), _now_ms() - 3 * HOUR_MS)
    async with KafkaSource(settings, bootstrap, [topic], history_horizon_ms=HOUR_MS) as source:
        taken = await _take(source, 5)
        assert source.skipped == source.skipped_by_seek == 0
        assert [r.offset for r in taken] == [60, 61, 62, 63, 64]


async def test_daemon_first_start_judges_recent_deploys_only(
    settings_factory: Callable[..., Settings], broker: TestBroker
) -> None:
    """A bad deploy from 3 h ago gets no command on a fresh start; a bad deploy from now does."""
    settings = settings_factory()
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    await ensure_topics(settings, bootstrap)
    old = _now_ms() - 3 * HOUR_MS
    await produce_json(
        bootstrap, settings.deploy_topic, [deploy(deploy_id="d-old", service="legacy")], old
    )
    await produce_json(
        bootstrap,
        settings.metric_topic,
        traffic(service="legacy", seconds=150, error_rate=0.08, cohort="canary"),
        old,
    )
    await produce_json(bootstrap, settings.deploy_topic, [deploy(deploy_id="d-new")], _now_ms())
    await produce_json(
        bootstrap,
        settings.metric_topic,
        traffic(seconds=150, error_rate=0.08, cohort="canary"),
        _now_ms(),
    )
    with capture_logs() as logs:
        async with running(settings) as daemon:
            commands = await read_until(bootstrap, settings.command_topic, bool)
            commands += await read_for(bootstrap, settings.command_topic, 2)
            registry = daemon.metrics.registry
            await eventually(
                lambda: (
                    registry.get_sample_value(
                        "guardian_events_rejected_total", {"reason": "history"}
                    )
                    == 151
                ),
                timeout_s=15,
            )
    assert {c["deploy_id"] for c in commands} == {"d-new"}
    seeks = [e["skipped_by_seek"] for e in logs if e["event"] == "history_skipped_before"]
    assert seeks
    assert sum(seeks) == (151 if broker.is_kafka else 0)

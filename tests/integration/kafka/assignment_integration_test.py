"""Partition assignment: each service's deploys and metrics reach the same replica.

A replica owns the services of partition N only if it holds partition N of
both input topics. aiokafka's default round-robin assignor splits them once
there are three members (deploy-0 to one, metric-0 to another), which in a
3-replica soak gave false and missed rollbacks; the source uses the range
assignor, and the daemon refuses input topics with unequal partition counts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from guardian.config.settings import Settings
from guardian.errors import ConfigError
from guardian.kafka.admin import check_copartitioned, ensure_topics
from guardian.kafka.source import AssignmentCallback, KafkaSource, Position

pytestmark = pytest.mark.kafka


async def test_three_members_get_co_partitioned_assignments(
    settings_factory: Callable[..., Settings],
) -> None:
    """Each of three members holds the same partition numbers of both input topics."""
    settings = settings_factory(topic_partitions=4)
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    await ensure_topics(settings, bootstrap)
    topics = [settings.deploy_topic, settings.metric_topic]
    held: list[frozenset[Position]] = [frozenset()] * 3

    def recorder(index: int) -> AssignmentCallback:
        async def record(parts: frozenset[Position]) -> None:
            held[index] = parts

        return record

    async with contextlib.AsyncExitStack() as stack:
        sources = [
            await stack.enter_async_context(KafkaSource(settings, bootstrap, topics, recorder(i)))
            for i in range(3)
        ]
        settled = False
        deadline = asyncio.get_running_loop().time() + 60
        while not settled:
            assert asyncio.get_running_loop().time() < deadline, f"never settled: {held}"
            await asyncio.gather(*(s.getmany(timeout_ms=100) for s in sources))
            every = [p for parts in held for p in parts]
            settled = len(every) == 8 and len(set(every)) == 8 and all(held)

    for parts in held:
        by_topic = {t: {p for topic, p in parts if topic == t} for t in topics}
        assert by_topic[settings.deploy_topic] == by_topic[settings.metric_topic], held


async def test_input_topics_with_unequal_partition_counts_are_refused(
    settings_factory: Callable[..., Settings],
) -> None:
    """Deploys on 2 partitions and metrics on 4 would split services: a ConfigError says so."""
    settings = settings_factory()
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(settings.deploy_topic, 2, 1), NewTopic(settings.metric_topic, 4, 1)]
        )
        # Created by the controller is not yet known to every broker's metadata.
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            described = await admin.describe_topics([settings.deploy_topic, settings.metric_topic])
            if all(d["partitions"] and d["error_code"] == 0 for d in described):
                break
            assert asyncio.get_running_loop().time() < deadline, described
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    with pytest.raises(ConfigError, match=r"not co-partitioned.* has 2 partition.* has 4"):
        await check_copartitioned(settings, bootstrap)


async def test_equal_partition_counts_pass(settings_factory: Callable[..., Settings]) -> None:
    """Topics the guardian created itself are co-partitioned; the common count is returned."""
    settings = settings_factory(topic_partitions=3)
    assert settings.bootstrap_servers
    await ensure_topics(settings, settings.bootstrap_servers)
    assert await check_copartitioned(settings, settings.bootstrap_servers) == 3

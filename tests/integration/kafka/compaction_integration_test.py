"""The state topic as the guardian creates it is compacted by Apache Kafka: restore stays small.

Many updates of the same services shrink to about one record per service
once a write rolls the segment (``state_segment_ms``) and the log cleaner
runs, so a replica's restore (``read_latest``) reads about one record per
service, not one per update. The embedded broker never compacts: skipped
there. ``benchmarks/restore.py`` measures the same at 100 × 1000.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest

from guardian.config.settings import Settings
from guardian.kafka.admin import ensure_topics
from guardian.kafka.state_store import read_latest
from tests.support.brokers import TestBroker
from tests.support.kafka import produce

pytestmark = pytest.mark.kafka

SERVICES, UPDATES = 20, 100
ROLL = b"roll"


async def _restore(settings: Settings, bootstrap: str) -> tuple[int, dict[bytes, bytes]]:
    """Records a restore reads, and what it restores."""
    read = 0

    def keep(key: bytes) -> bool:
        nonlocal read
        read += 1
        return key != ROLL

    latest = await read_latest(settings, bootstrap, settings.state_topic, keep=keep)
    return read, latest


async def test_compaction_leaves_about_one_record_per_service(
    settings_factory: Callable[..., Settings], broker: TestBroker
) -> None:
    """2,000 updates of 20 services come back as the 20 latest after about 20 records read."""
    if not broker.is_kafka:
        pytest.skip("the embedded broker never compacts")
    settings = settings_factory(topic_partitions=1, state_segment_ms=500)
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    await ensure_topics(settings, bootstrap)
    for update in range(UPDATES):
        await produce(
            bootstrap,
            settings.state_topic,
            [
                (f"svc-{s}\x00prod".encode(), orjson.dumps({"update": update}))
                for s in range(SERVICES)
            ],
        )
    await asyncio.sleep(0.6)
    await produce(bootstrap, settings.state_topic, [(ROLL, b"{}")])  # rolls the old segment

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        read, latest = await _restore(settings, bootstrap)
        if read <= SERVICES + 2 or loop.time() > deadline:
            break
        await asyncio.sleep(1)
    assert read <= SERVICES + 2, f"restore read {read} records for {SERVICES} services"
    assert len(latest) == SERVICES
    assert {orjson.loads(value)["update"] for value in latest.values()} == {UPDATES - 1}

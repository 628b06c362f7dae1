"""Helpers for tests that break an Apache Kafka cluster of their own while the guardian runs.

Who leads a topic's partitions and who coordinates a group (asked of the
cluster, never guessed), a producer that counts what the cluster
acknowledged, the guardian's committed offsets against the log end,
``/readyz`` sampled over time and ``/metrics`` read over HTTP. Limits: one
plaintext cluster on loopback; the readiness sampler sees states that last
longer than its interval (0.1 s), not shorter blips.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from guardian.config.settings import Settings
from guardian.ports import free_port
from tests.support.brokers import KAFKA, SCRIPT, KafkaCluster, kafka_missing
from tests.support.kafka import unique

REPO = Path(__file__).resolve().parents[2]


def require_kafka() -> None:
    """Skip when Apache Kafka cannot run here or is not selected; under ``CI=true`` fail instead."""
    selected = [k.strip() for k in os.environ.get("GUARDIAN_TEST_BROKERS", "").split(",")]
    if any(selected) and KAFKA not in selected:
        pytest.skip("GUARDIAN_TEST_BROKERS leaves Apache Kafka out")
    why = kafka_missing()
    if why is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true needs Apache Kafka for this test, but {why}")
    pytest.skip(f"needs its own Apache Kafka cluster, but {why} (install Java 17+ and Maven)")


def cluster_settings(bootstrap: str, *, kafka: bool = True, **overrides: Any) -> Settings:
    """Settings on a broker the test owns, with topics and group unique to the test.

    As the suite's ``settings_factory``, without tying the test to the session broker.
    """
    prefix = unique("t")
    values: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": f"{prefix}-group",
        "deploy_topic": f"{prefix}.deploy.events",
        "metric_topic": f"{prefix}.metric.events",
        "command_topic": f"{prefix}.rollback.commands",
        "audit_topic": f"{prefix}.guardian.audit",
        "dlq_topic": f"{prefix}.guardian.dlq",
        "notification_topic": f"{prefix}.guardian.notifications",
        "state_topic": f"{prefix}.guardian.state",
        "rules": REPO / "rules",
        "http": f"127.0.0.1:{free_port()}",
        # Apache Kafka refuses sessions under group.min.session.timeout.ms (6 s).
        "session_timeout_ms": 6000 if kafka else 2000,
        "heartbeat_interval_ms": 1000 if kafka else 500,
        "fetch_max_wait_ms": 20,
        "grace_period_s": 10,
    }
    values.update(overrides)
    return Settings(**values)


def stop_node(cluster: KafkaCluster, node_id: int) -> None:
    """SIGTERM one node through ``scripts/kafka stop --node`` (a controlled shutdown)."""
    command = [str(SCRIPT), "stop", "--node", str(node_id), "--dir", str(cluster.directory)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


@contextlib.asynccontextmanager
async def admin_client(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """An admin client for the block."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition → node id of its leader, as the cluster describes the topic now."""
    async with admin_client(bootstrap) as admin:
        (described,) = await admin.describe_topics([topic])
    return {p["partition"]: p["leader"] for p in described["partitions"]}


async def busiest_leader(bootstrap: str, topic: str) -> int:
    """The node that leads most partitions of ``topic`` (the lowest id on a tie)."""
    led = list((await leaders(bootstrap, topic)).values())
    return min(set(led), key=lambda node: (-led.count(node), node))


async def coordinator(bootstrap: str, group_id: str, timeout_s: float = 20) -> int:
    """Node id of the group's coordinator (retried while the offsets topic is being set up)."""
    deadline = time.monotonic() + timeout_s
    async with admin_client(bootstrap) as admin:
        while True:
            try:
                return int(await admin.find_coordinator(group_id))
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)


async def unread(bootstrap: str, group_id: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """Per partition of ``topics``: records between the group's committed offset and the log end."""
    async with admin_client(bootstrap) as admin:
        described = await admin.describe_topics(list(topics))
        partitions = [
            TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]
        ]
        committed = await admin.list_consumer_group_offsets(group_id, partitions=partitions)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp: ends[tp] - max(0, committed[tp].offset) for tp in partitions}


@dataclass(frozen=True)
class Record:
    """A record read back, with where it sits and when it was written."""

    partition: int
    offset: int
    timestamp_ms: int
    value: dict[str, Any]


async def read_records(
    bootstrap: str,
    topic: str,
    done: Callable[[list[Record]], bool] = lambda _seen: False,
    timeout_s: float = 30.0,
) -> list[Record]:
    """Read a topic from the start until ``done(records)`` or the deadline."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    seen: list[Record] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not done(seen):
            batches = await consumer.getmany(timeout_ms=200)
            for tp, messages in batches.items():
                seen.extend(
                    Record(tp.partition, m.offset, m.timestamp, orjson.loads(m.value))
                    for m in messages
                )
        return seen
    finally:
        await consumer.stop()


@dataclass
class CountingProducer:
    """An idempotent ``acks=all`` producer that remembers every record the cluster acknowledged.

    Each ``send_all`` waits for its records, so a producer blocked by a
    leaderless partition holds the stream back, as a real one would.
    """

    bootstrap: str
    acked: dict[str, set[tuple[int, int]]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    _producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> CountingProducer:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=60_000,
        )
        await self._producer.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def send_all(self, topic: str, events: Iterable[dict[str, Any]]) -> None:
        """Send JSON events keyed by service; record each acknowledgement or failure."""
        assert self._producer is not None
        futures = [
            await self._producer.send(
                topic, key=str(e.get("service", "")).encode(), value=orjson.dumps(e)
            )
            for e in events
        ]
        acked = self.acked.setdefault(topic, set())
        for outcome in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(outcome, BaseException):
                self.failed.append(repr(outcome))
            else:
                acked.add((outcome.partition, outcome.offset))

    def count(self, topic: str) -> int:
        """Records of ``topic`` the cluster acknowledged."""
        return len(self.acked.get(topic, ()))


@dataclass
class ReadinessLog:
    """``/readyz`` sampled every 0.1 s: each change of answer, with monotonic times.

    An answer is True (200), False (503) or None (no answer within 1 s: the
    process is busy or gone), so a slow answer on a loaded machine is not
    mistaken for the guardian saying it is not ready.
    """

    port: int
    changes: list[tuple[float, bool | None]] = field(default_factory=list)

    @property
    def ready(self) -> bool | None:
        """The last answer (None before the first, or when the last probe got none)."""
        return self.changes[-1][1] if self.changes else None

    def red_since(self, since: float) -> list[float]:
        """Times after ``since`` when it answered not ready."""
        return [at for at, ok in self.changes if at >= since and ok is False]

    def silent_since(self, since: float) -> list[float]:
        """Times after ``since`` when a probe got no answer in time."""
        return [at for at, ok in self.changes if at >= since and ok is None]

    async def run(self) -> None:
        """Sample until cancelled."""
        timeout = aiohttp.ClientTimeout(total=1)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                answer: bool | None
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/readyz") as response:
                        answer = response.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    answer = None
                if not self.changes or answer != self.ready:
                    self.changes.append((time.monotonic(), answer))
                await asyncio.sleep(0.1)

    async def wait_for(self, ready: bool, timeout_s: float) -> float:
        """Wait until the last answer is ``ready``; return when it became so."""
        deadline = time.monotonic() + timeout_s
        while self.ready is not ready:
            if time.monotonic() > deadline:
                raise AssertionError(f"/readyz not {'ready' if ready else 'red'}: {self.changes}")
            await asyncio.sleep(0.05)
        return self.changes[-1][0]


@contextlib.asynccontextmanager
async def watching_readiness(port: int) -> AsyncIterator[ReadinessLog]:
    """Sample ``/readyz`` in the background for the block."""
    readiness = ReadinessLog(port)
    task = asyncio.create_task(readiness.run())
    try:
        yield readiness
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def metric_total(port: int, name: str, **labels: str) -> float:
    """Sum of a counter's ``_total`` samples on ``/metrics`` whose labels include ``labels``."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        text = await response.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == f"{name}_total" and labels.items() <= sample.labels.items()
    )


async def wait_metric(
    port: int, name: str, at_least: float, timeout_s: float, **labels: str
) -> None:
    """Wait until ``metric_total`` reaches ``at_least``."""
    deadline = time.monotonic() + timeout_s
    value = 0.0
    while time.monotonic() < deadline:
        value = await metric_total(port, name, **labels)
        if value >= at_least:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{name}{labels} = {value}, expected at least {at_least}")

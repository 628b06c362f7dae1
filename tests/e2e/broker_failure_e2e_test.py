"""Broker failures on a three-broker Apache Kafka cluster while the guardian judges a stream.

The module starts its own cluster (topics get replication 3 and
``min.insync.replicas=2``), so it can kill, stop and restart brokers without
disturbing the session's. Each test streams bad and healthy deploys' metrics
in chunks, breaks a broker part-way, and then checks the three promises:
every bad deploy gets exactly one rollback command id, no healthy deploy
gets one, and every record the cluster acknowledged was consumed (the
guardian's counter reaches the acknowledged count, its committed offsets
reach the log end, and the log holds every acknowledged record).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from guardian.config.settings import Settings
from tests.e2e.support import guardian_process, settings_env, wait_exit, wait_ready
from tests.e2e.support_kafka import (
    CountingProducer,
    ReadinessLog,
    Record,
    admin_client,
    busiest_leader,
    cluster_settings,
    coordinator,
    leaders,
    metric_total,
    read_records,
    require_kafka,
    stop_node,
    unread,
    wait_metric,
    watching_readiness,
)
from tests.support.brokers import KafkaCluster
from tests.support.events import T0, deploy, traffic

# The first test also waits for the module's cluster to start (20-45 s on a busy machine).
pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

BAD = [f"svc-{i}" for i in range(8)]
HEALTHY = [f"fine-{i}" for i in range(4)]
CHUNKS = 12  # the bad minutes are streamed in this many pieces
CONSUMED = "guardian_events_consumed"


@dataclass(frozen=True)
class ThreeBrokers:
    """The module's cluster and its bootstrap servers (all three brokers)."""

    cluster: KafkaCluster
    bootstrap: str


@pytest.fixture(scope="module")
def three_brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreeBrokers]:
    """A three-broker KRaft cluster for this module, purged afterwards."""
    require_kafka()
    cluster = KafkaCluster(tmp_path_factory.mktemp("kafka3"), brokers=3)
    try:
        yield ThreeBrokers(cluster, cluster.start())
    finally:
        cluster.stop(purge=True)


@pytest.fixture
def brokers(three_brokers: ThreeBrokers) -> ThreeBrokers:
    """The module's cluster with all three up (a failed test before may have left one down)."""
    three_brokers.cluster.start()
    return three_brokers


@dataclass
class Run:
    """One streamed run: its settings, what was seen during it and what it left behind."""

    settings: Settings
    bootstrap: str
    readiness: ReadinessLog
    producer: CountingProducer
    victim: int | None = None
    broken_at: float = 0.0  # monotonic, for readiness
    broken_at_ms: float = 0.0  # wall clock, to compare with record timestamps
    commands: list[Record] = field(default_factory=list)
    consumed: float = 0.0
    dead_letters: float = 0.0

    def broke(self, victim: int) -> int:
        """Note which node is about to fail, and when; return it."""
        self.victim = victim
        self.broken_at, self.broken_at_ms = time.monotonic(), time.time() * 1000
        return victim

    def command_ids(self) -> dict[str, set[str]]:
        """Deploy id → the distinct command ids issued for it."""
        ids: dict[str, set[str]] = {}
        for record in self.commands:
            ids.setdefault(record.value["deploy_id"], set()).add(record.value["command_id"])
        return ids


Hook = Callable[[Run], Awaitable[None]]


def _stream() -> list[list[dict[str, object]]]:
    """The bad and healthy deploys' post-deploy metrics, in event-time order, in chunks."""
    events = [
        e
        for service in BAD + HEALTHY
        for e in traffic(
            service=service,
            start_ms=T0 + 30_000,
            seconds=120,
            error_rate=0.09 if service in BAD else 0.004,
        )
    ]
    events.sort(key=lambda e: int(str(e["timestamp"])))
    size = -(-len(events) // CHUNKS)
    return [events[i : i + size] for i in range(0, len(events), size)]


async def _streamed_run(
    bootstrap: str,
    tmp_path: Path,
    hooks: dict[int, Hook],
    before_stop: Hook | None = None,
) -> Run:
    """Run the guardian, stream the metrics, call ``hooks[i]`` before chunk ``i``, collect.

    The rules need 30 s of event time with bad data, so a hook before chunk
    3 (the first 30 s of bad traffic) comes before every decision.
    ``before_stop`` runs once everything is collected, the guardian still up.
    """
    settings = cluster_settings(bootstrap)
    port = settings.http_port
    with guardian_process(settings_env(settings), log_path=tmp_path / "guardian.log") as guardian:
        await wait_ready(port, guardian)
        async with watching_readiness(port) as readiness, CountingProducer(bootstrap) as producer:
            run = Run(settings, bootstrap, readiness, producer)
            # Within the allowed lateness of the deploy (T0), so none of it is skipped as late.
            baseline = [
                e
                for s in BAD + HEALTHY
                for e in traffic(service=s, start_ms=T0 - 55_000, seconds=85, every_s=5)
            ]
            await producer.send_all(settings.metric_topic, baseline)
            deploys = [
                deploy(deploy_id=f"d-{s}", service=s, strategy="rolling") for s in BAD + HEALTHY
            ]
            await producer.send_all(settings.deploy_topic, deploys)
            await wait_metric(port, CONSUMED, len(baseline), 30, topic=settings.metric_topic)
            for index, chunk in enumerate(_stream()):
                if index in hooks:
                    await hooks[index](run)
                await producer.send_all(settings.metric_topic, chunk)
                await asyncio.sleep(0.25)
            wanted = {f"d-{s}" for s in BAD}
            await read_records(
                bootstrap,
                settings.command_topic,
                lambda seen: {r.value["deploy_id"] for r in seen} >= wanted,
                timeout_s=60,
            )
            acked = producer.count(settings.metric_topic)
            await wait_metric(port, CONSUMED, acked, 60, topic=settings.metric_topic)
            await _all_committed(bootstrap, settings)
            run.consumed = await metric_total(port, CONSUMED, topic=settings.metric_topic)
            run.dead_letters = await metric_total(port, "guardian_dead_letters")
            run.commands = await read_records(bootstrap, settings.command_topic, timeout_s=3)
            await _log_holds_every_acked_record(bootstrap, settings.metric_topic, producer)
            if before_stop is not None:
                await before_stop(run)
        guardian.send_signal(signal.SIGTERM)
        assert await wait_exit(guardian) == 0
    return run


async def _all_committed(bootstrap: str, settings: Settings, timeout_s: float = 30) -> None:
    """Wait until the guardian's group has committed up to the log end of both input topics."""
    deadline = time.monotonic() + timeout_s
    topics = (settings.deploy_topic, settings.metric_topic)
    while (behind := await unread(bootstrap, settings.group_id, topics)) and any(behind.values()):
        if time.monotonic() > deadline:
            raise AssertionError(f"records left unread: {behind}")
        await asyncio.sleep(0.5)


async def _log_holds_every_acked_record(
    bootstrap: str, topic: str, producer: CountingProducer
) -> None:
    """Every (partition, offset) the producer was acknowledged is still in the log."""
    acked = producer.acked[topic]
    held = await read_records(bootstrap, topic, lambda seen: len(seen) >= len(acked), timeout_s=30)
    lost = acked - {(r.partition, r.offset) for r in held}
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {sorted(lost)[:5]}"


def _assert_decisions(run: Run) -> None:
    """One command id per bad deploy, none for a healthy one, all decided after the failure,
    and nothing acknowledged left out."""
    ids = run.command_ids()
    acked = run.producer.count(run.settings.metric_topic)
    print(
        f"commands: {len(run.commands)} records, {sum(map(len, ids.values()))} ids for "
        f"{len(ids)} deploys; metric records acked {acked}, consumed {run.consumed:.0f}"
    )
    assert set(ids) == {f"d-{s}" for s in BAD}, f"missed or false rollbacks: {sorted(ids)}"
    assert all(len(one) == 1 for one in ids.values()), ids
    assert min(c.timestamp_ms for c in run.commands) > run.broken_at_ms, (
        "decided before the failure"
    )
    assert not run.producer.failed, run.producer.failed[:3]
    assert run.consumed >= acked
    assert run.dead_letters == 0


async def test_input_partition_leader_killed_mid_stream(
    brokers: ThreeBrokers, tmp_path: Path
) -> None:
    """SIGKILL of the broker leading most input partitions: no decision lost or doubled.

    Its partitions have no leader until the controller fences it (KRaft's
    broker session, 9 s); meanwhile the guardian's lag probe to that leader
    times out, so /readyz goes red; once the two survivors lead every
    partition (min.insync.replicas=2 still met) it is green again, with the
    broker still dead.
    """
    cluster = brokers.cluster

    async def kill_leader(run: Run) -> None:
        victim = run.broke(await busiest_leader(run.bootstrap, run.settings.metric_topic))
        await asyncio.to_thread(cluster.kill, victim)

    async def still_down(run: Run) -> None:
        await _ready_with_two_of_three(run, expect_red=True)

    try:
        run = await _streamed_run(brokers.bootstrap, tmp_path, {3: kill_leader}, still_down)
    finally:
        await asyncio.to_thread(cluster.start)
    _assert_decisions(run)


async def test_group_coordinator_killed_mid_stream(brokers: ThreeBrokers, tmp_path: Path) -> None:
    """SIGKILL of the guardian group's coordinator: the group moves on, no decision lost or doubled.

    Commits and heartbeats wait for a new coordinator (there once the
    controller fences the dead broker); offsets committed before the kill
    are kept (the offsets topic is replicated), so nothing is judged twice
    into a second command. /readyz goes red only if the dead broker also
    led input partitions (the lag probe asks the leaders, not the
    coordinator), and is green again with the broker still dead.
    """
    cluster = brokers.cluster
    led_inputs: list[bool] = []

    async def kill_coordinator(run: Run) -> None:
        victim = await coordinator(run.bootstrap, run.settings.group_id)
        led_inputs.append(victim in await _input_leaders(run.bootstrap, run.settings))
        await asyncio.to_thread(cluster.kill, run.broke(victim))

    async def still_down(run: Run) -> None:
        moved = await coordinator(run.bootstrap, run.settings.group_id)
        assert moved != run.victim, "the group's coordinator did not move"
        await _ready_with_two_of_three(run, expect_red=led_inputs[0])

    try:
        run = await _streamed_run(brokers.bootstrap, tmp_path, {3: kill_coordinator}, still_down)
    finally:
        await asyncio.to_thread(cluster.start)
    _assert_decisions(run)


async def test_broker_restarted_while_the_guardian_works(
    brokers: ThreeBrokers, tmp_path: Path
) -> None:
    """A broker stopped (SIGTERM) and started again mid-stream: the guardian catches up, once.

    A controlled shutdown hands its leaderships over before the process
    exits, so producers and the guardian move to the other two brokers at
    once and /readyz never answers not-ready (a probe left unanswered for a
    second while the restarting JVM takes the CPU is counted apart); the
    restarted broker rejoins as a follower. The guardian ends with its
    commits at the log end.
    """
    cluster = brokers.cluster
    restarts: list[asyncio.Task[str]] = []

    async def stop_leader(run: Run) -> None:
        victim = run.broke(await busiest_leader(run.bootstrap, run.settings.metric_topic))
        await asyncio.to_thread(stop_node, cluster, victim)

    async def start_again(_run: Run) -> None:
        restarts.append(asyncio.create_task(asyncio.to_thread(cluster.start)))

    async def restarted(run: Run) -> None:
        await asyncio.gather(*restarts)
        await run.readiness.wait_for(True, timeout_s=30)
        red = run.readiness.red_since(run.broken_at)
        silent = run.readiness.silent_since(run.broken_at)
        print(f"readiness: {len(red)} red spell(s), {len(silent)} probe(s) unanswered in 1 s")
        assert not red, run.readiness.changes

    try:
        run = await _streamed_run(
            brokers.bootstrap, tmp_path, {3: stop_leader, 7: start_again}, restarted
        )
    finally:
        await asyncio.gather(*restarts, return_exceptions=True)
    _assert_decisions(run)


async def _ready_with_two_of_three(run: Run, *, expect_red: bool) -> None:
    """With one broker of three dead, /readyz is green (again) within 30 s of the kill.

    ``expect_red``: the dead broker led input partitions, so the lag probe
    (end offsets from each leader, 3 s timeout, every 5 s) met a leaderless
    partition and readiness went red before it went green.
    """
    left_s = run.broken_at + 30 - time.monotonic()
    green_at = await run.readiness.wait_for(True, timeout_s=max(1.0, left_s))
    red = [round(at - run.broken_at, 1) for at in run.readiness.red_since(run.broken_at)]
    silent = len(run.readiness.silent_since(run.broken_at))
    print(
        f"readiness: red at +{red} s, green at +{green_at - run.broken_at:.1f} s after the kill"
        f" ({silent} probe(s) unanswered in 1 s)"
    )
    if expect_red:
        assert red, "/readyz stayed green while input partitions had no leader"
        assert green_at - run.broken_at <= 30


async def _input_leaders(bootstrap: str, settings: Settings) -> set[int]:
    """Nodes leading a partition of either input topic."""
    led: set[int] = set()
    for topic in (settings.deploy_topic, settings.metric_topic):
        led |= set((await leaders(bootstrap, topic)).values())
    return led


async def test_topics_on_three_brokers_are_replicated_and_the_state_topic_compacts(
    brokers: ThreeBrokers,
) -> None:
    """Unset replication gives 3 replicas and min.insync.replicas=2; replication 1 is warned of."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
    from structlog.testing import capture_logs

    from guardian.kafka.admin import ensure_topics

    settings = cluster_settings(brokers.bootstrap)
    await ensure_topics(settings, brokers.bootstrap)
    async with admin_client(brokers.bootstrap) as admin:
        described = await admin.describe_topics([settings.metric_topic, settings.state_topic])
        assert {len(p["replicas"]) for d in described for p in d["partitions"]} == {3}
        answers = await admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, name)
                for name in (settings.metric_topic, settings.state_topic)
            ]
        )
    configs: dict[str, dict[str, str]] = {}
    for answer in answers:
        for resource in answer.resources:
            name, entries = resource[3], resource[4]
            configs[name] = {entry[0]: entry[1] for entry in entries}
    assert configs[settings.metric_topic]["min.insync.replicas"] == "2"
    state = configs[settings.state_topic]
    assert (state["cleanup.policy"], state["min.insync.replicas"]) == ("compact", "2")
    assert state["segment.ms"] == str(settings.state_segment_ms)

    single = cluster_settings(brokers.bootstrap, topic_replication=1)
    with capture_logs() as logs:
        await ensure_topics(single, brokers.bootstrap)
    assert [e["brokers"] for e in logs if e["event"] == "topics_not_replicated"] == [3]

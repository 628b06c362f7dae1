"""Soak: replicas under steady load, killed with SIGKILL now and then; did every promise hold?

Starts the embedded broker (or uses ``--bootstrap-servers``), ``--replicas``
``guardian run`` processes in one consumer group, and a producer that keeps
``--services`` services busy at ``--rate`` metric events/s in event time =
wall time. Deploys start all the time; about a third are bad (8% errors from
their first request), the rest healthy. A little garbage is mixed in. Every
``--kill-every`` seconds a random replica is killed with SIGKILL and started
again. At the end it reports, as one JSON line: events produced, bad and
healthy deploys, rollbacks expected vs made, missed, false, deploys with more
than one distinct command id (must be 0), garbage sent vs dead letters, and
the peak RSS of any replica.

    python benchmarks/soak.py --minutes 10 --replicas 2 --kill-every 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.brokers import add_broker_arguments, bench_broker  # noqa: E402
from guardian.ports import free_port  # noqa: E402

GUARDIAN = str(Path(sys.executable).with_name("guardian"))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Replicas:
    """The guardian processes of the soak, each restartable."""

    def __init__(self, count: int, env: dict[str, str], log_dir: Path) -> None:
        self._env = env
        self._log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * count
        self.kills = 0
        self.peak_rss_mb = 0.0

    def start(self, index: int) -> None:
        env = {**self._env, "GUARDIAN_HTTP": f"127.0.0.1:{free_port()}"}
        log = (self._log_dir / f"replica-{index}.log").open("ab")
        self.processes[index] = subprocess.Popen(
            [GUARDIAN, "run"], env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def kill_one(self) -> None:
        index = random.randrange(len(self.processes))
        process = self.processes[index]
        if process is not None:
            process.send_signal(signal.SIGKILL)
            process.wait()
            self.kills += 1
        self.start(index)

    def sample_rss(self) -> None:
        for process in self.processes:
            if process is not None and process.poll() is None:
                self.peak_rss_mb = max(self.peak_rss_mb, rss_mb(process.pid))

    def stop(self) -> None:
        for process in self.processes:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            if process is not None:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


async def load(
    bootstrap: str, topics: dict[str, str], args: Any, stop_at: float, ledger: dict[str, Any]
) -> None:
    """Produce deploys, metrics and garbage until ``stop_at``."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, acks="all")
    await producer.start()
    services = [f"soak-{i:04d}" for i in range(args.services)]
    current: dict[str, dict[str, Any]] = {}
    sequence = 0
    try:
        while time.monotonic() < stop_at:
            started = time.monotonic()
            now = _now_ms()
            # Start a deploy on a random idle service now and then.
            for service in random.sample(services, k=max(1, args.services // 50)):
                if service in current or random.random() > 0.1:
                    continue
                sequence += 1
                bad = random.random() < 0.33
                deploy_id = f"d-{os.getpid()}-{sequence}"
                current[service] = {"deploy_id": deploy_id, "bad": bad, "start": now}
                ledger["bad" if bad else "healthy"].add(deploy_id)
                ledger["started_at"][deploy_id] = time.monotonic()
                event = {
                    "kind": "deploy",
                    "type": "started",
                    "deploy_id": deploy_id,
                    "service": service,
                    "environment": "production",
                    "version": f"v{sequence}",
                    "previous_version": f"v{sequence - 1}",
                    "strategy": "rolling",
                    "component": "application",
                    "regions": ["us-east"],
                    "timestamp": now,
                }
                await producer.send(topics["deploy"], orjson.dumps(event), key=service.encode())
            # Finish deploys after three minutes (healthy ones complete, bad ones fail).
            for service, info in list(current.items()):
                if now - info["start"] > 180_000:
                    event = {
                        "kind": "deploy",
                        "type": "failed" if info["bad"] else "completed",
                        "deploy_id": info["deploy_id"],
                        "service": service,
                        "environment": "production",
                        "version": "x",
                        "timestamp": now,
                    }
                    await producer.send(topics["deploy"], orjson.dumps(event), key=service.encode())
                    del current[service]
            per_tick = max(1, args.rate // 10)
            for i in range(per_tick):
                service = services[(ledger["events"] + i) % len(services)]
                live = current.get(service)
                error_rate = 0.08 if live and live["bad"] else 0.004
                requests = 40
                event = {
                    "kind": "metric",
                    "service": service,
                    "environment": "production",
                    "region": "us-east",
                    "timestamp": now,
                    "values": {
                        "requests": requests,
                        "errors": sum(random.random() < error_rate for _ in range(requests)),
                        "latency_p95_ms": random.uniform(110, 130),
                    },
                }
                await producer.send(topics["metric"], orjson.dumps(event), key=service.encode())
            ledger["events"] += per_tick
            if random.random() < 0.05:
                await producer.send(topics["metric"], b"\xff garbage", key=b"soak-garbage")
                ledger["garbage"] += 1
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
        await producer.flush()
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record of a topic."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    records: list[dict[str, Any]] = []
    try:
        empty = 0
        while empty < 10:
            batches = await consumer.getmany(timeout_ms=200)
            empty = 0 if batches else empty + 1
            for messages in batches.values():
                records.extend(orjson.loads(m.value) for m in messages)
    finally:
        await consumer.stop()
    return records


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=60)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--services", type=int, default=200)
    add_broker_arguments(parser)
    parser.add_argument("--log-dir", default="soak-logs")
    args = parser.parse_args()
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before anything runs
    stack = contextlib.AsyncExitStack()
    broker = await stack.enter_async_context(bench_broker(args))
    bootstrap = broker.bootstrap
    tag = str(os.getpid())
    topics = {
        "deploy": f"soak.deploy.{tag}",
        "metric": f"soak.metric.{tag}",
        "command": f"soak.commands.{tag}",
        "dlq": f"soak.dlq.{tag}",
    }
    env = {
        **os.environ,
        "GUARDIAN_BOOTSTRAP_SERVERS": bootstrap,
        "GUARDIAN_GROUP_ID": f"soak-{tag}",
        "GUARDIAN_DEPLOY_TOPIC": topics["deploy"],
        "GUARDIAN_METRIC_TOPIC": topics["metric"],
        "GUARDIAN_COMMAND_TOPIC": topics["command"],
        "GUARDIAN_DLQ_TOPIC": topics["dlq"],
        "GUARDIAN_AUDIT_TOPIC": f"soak.audit.{tag}",
        "GUARDIAN_NOTIFICATION_TOPIC": f"soak.notify.{tag}",
        "GUARDIAN_STATE_TOPIC": f"soak.state.{tag}",
        "GUARDIAN_RULES": str(REPO / "rules"),
        "GUARDIAN_LOG_FORMAT": "json",
        "GUARDIAN_SESSION_TIMEOUT_MS": "6000",
        "GUARDIAN_HEARTBEAT_INTERVAL_MS": "1000",
    }
    replicas = Replicas(args.replicas, env, log_dir)
    ledger: dict[str, Any] = {
        "bad": set(),
        "healthy": set(),
        "events": 0,
        "garbage": 0,
        "started_at": {},
    }
    try:
        for index in range(args.replicas):
            replicas.start(index)
        await asyncio.sleep(5)
        stop_at = time.monotonic() + args.minutes * 60
        producer = asyncio.create_task(load(bootstrap, topics, args, stop_at, ledger))
        next_kill = time.monotonic() + args.kill_every
        while not producer.done():
            await asyncio.sleep(1)
            replicas.sample_rss()
            if time.monotonic() >= next_kill:
                replicas.kill_one()
                next_kill = time.monotonic() + args.kill_every
        await producer
        load_ended = time.monotonic()
        await asyncio.sleep(20)  # let the group catch up after the last kill
        replicas.sample_rss()
        commands = await read_all(bootstrap, topics["command"])
        letters = await read_all(bootstrap, topics["dlq"])
    finally:
        replicas.stop()
        await stack.aclose()
    ids_by_deploy: dict[str, set[str]] = defaultdict(set)
    for command in commands:
        if command.get("kind") == "rollback_command":
            ids_by_deploy[command["deploy_id"]].add(command["command_id"])
    decided = set(ids_by_deploy)
    bad, healthy = ledger["bad"], ledger["healthy"]
    # A bad deploy needs up to a minute of its own traffic to be judged; one started in
    # the last 90 s of load may legitimately not be, so it is reported apart.
    judgeable = {d for d in bad if load_ended - ledger["started_at"][d] >= 90}
    print(
        orjson.dumps(
            {
                "benchmark": "soak",
                "broker": broker.kind,
                "minutes": args.minutes,
                "replicas": args.replicas,
                "kills": replicas.kills,
                "events_produced": ledger["events"],
                "bad_deploys": len(bad),
                "healthy_deploys": len(healthy),
                "judgeable_bad_deploys": len(judgeable),
                "rollbacks_made": len(decided & bad),
                "missed_rollbacks": sorted(judgeable - decided),
                "late_bad_deploys_not_yet_decided": len((bad - judgeable) - decided),
                "false_rollbacks": sorted(decided & healthy),
                "deploys_with_two_command_ids": sum(
                    1 for ids in ids_by_deploy.values() if len(ids) > 1
                ),
                "command_records": len(commands),
                "garbage_sent": ledger["garbage"],
                "dead_letters": len(letters),
                "peak_rss_mb": round(replicas.peak_rss_mb, 1),
            }
        ).decode()
    )


if __name__ == "__main__":
    asyncio.run(main())

"""Throughput: guardian vs. a bare aiokafka consumer on the same pre-produced topic, one run.

Pre-produces N metric events (about 200 bytes, 1,000 services, 4 partitions)
plus deploy events for some services, then measures:

- a bare aiokafka consumer that only counts records (the ceiling);
- ``guardian run`` as a separate process with the default rule pack, counted
  through its own ``guardian_events_consumed_total`` on ``/metrics``.

Both rates are measured from the first record taken to the last, so group
joins and process start-up are excluded. Prints one JSON line.

    python benchmarks/throughput.py --events 500000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.brokers import add_broker_arguments, bench_broker  # noqa: E402
from guardian.ports import free_port  # noqa: E402

T0 = 1795478400000


def metric_event(i: int, services: int) -> bytes:
    """One ~200-byte healthy metric event."""
    service = f"svc-{i % services:04d}"
    return orjson.dumps(
        {
            "kind": "metric",
            "service": service,
            "environment": "production",
            "region": "us-east",
            "timestamp": T0 + (i // services) * 1000,
            "values": {
                "requests": 100,
                "errors": random.randint(0, 1),
                "latency_p95_ms": round(random.uniform(110, 130), 1),
            },
        }
    )


async def produce_all(bootstrap: str, topic: str, deploy_topic: str, args: Any) -> None:
    """Create the topics and write deploys and N metric events."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, args.partitions, 1) for t in (topic, deploy_topic)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024, acks=1
    )
    await producer.start()
    try:
        for d in range(args.deploys):
            service = f"svc-{d:04d}"
            deploy = {
                "kind": "deploy",
                "type": "started",
                "deploy_id": f"d-{d}",
                "service": service,
                "environment": "production",
                "version": "2.0.1",
                "previous_version": "2.0.0",
                "strategy": "canary",
                "component": "application",
                "regions": ["us-east"],
                "timestamp": T0,
            }
            await producer.send(deploy_topic, orjson.dumps(deploy), key=service.encode())
        pending = []
        for i in range(args.events):
            value = metric_event(i, args.services)
            key = f"svc-{i % args.services:04d}".encode()
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def bare_consumer(bootstrap: str, topic: str, expected: int) -> float:
    """Events/s of a consumer that only counts."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bare-{os.getpid()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        fetch_max_wait_ms=10,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    count, first = 0, 0.0
    try:
        while count < expected:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for messages in batches.values():
                if not first and messages:
                    first = time.perf_counter()
                count += len(messages)
        rate: float = count / (time.perf_counter() - first)
        return rate
    finally:
        await consumer.stop()


async def guardian_rate(bootstrap: str, args: Any, topic: str, deploy_topic: str) -> float:
    """Events/s of ``guardian run`` (``--replicas`` of them in one group), from their /metrics.

    With several replicas the clock starts once every replica reports ready
    (partitions assigned), so group joins and their rebalances are not timed.
    """
    ports = [free_port() for _ in range(args.replicas)]
    base_env = {
        **os.environ,
        "GUARDIAN_BOOTSTRAP_SERVERS": bootstrap,
        "GUARDIAN_GROUP_ID": f"guardian-bench-{os.getpid()}",
        "GUARDIAN_METRIC_TOPIC": topic,
        "GUARDIAN_DEPLOY_TOPIC": deploy_topic,
        "GUARDIAN_RULES": str(REPO / "rules"),
        "GUARDIAN_LOG_LEVEL": "warning",
        "GUARDIAN_SESSION_TIMEOUT_MS": "6000",
        "GUARDIAN_HEARTBEAT_INTERVAL_MS": "1000",
        "GUARDIAN_MAX_FUTURE_SKEW_S": str(10**9),
    }
    guardian = str(Path(sys.executable).with_name("guardian"))
    processes = [
        subprocess.Popen(
            [guardian, "run"],
            env={**base_env, "GUARDIAN_HTTP": f"127.0.0.1:{port}"},
            stdout=subprocess.DEVNULL,
        )
        for port in ports
    ]
    expected = args.events + args.deploys
    first = last = first_count = 0.0
    try:
        async with aiohttp.ClientSession() as http:
            while True:
                for process in processes:
                    if process.poll() is not None:
                        raise SystemExit(f"guardian exited with {process.returncode}")
                counts = [await _consumed(http, port) for port in ports]
                consumed = sum(c for c in counts if c is not None)
                now = time.perf_counter()
                everyone = all(c is not None for c in counts)
                if args.replicas > 1 and everyone and not first:
                    everyone = all([await _ready(http, port) for port in ports])
                if consumed and everyone and not first:
                    first, first_count = now, consumed
                if consumed >= expected:
                    last = now
                    break
                await asyncio.sleep(0.02)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
    if not first:
        raise SystemExit(
            "every record was consumed before all replicas were ready: use more --events"
        )
    # Count from the first poll that saw records: what came before it is not timed.
    rate: float = (expected - first_count) / max(last - first, 1e-6)
    return rate


async def _consumed(http: aiohttp.ClientSession, port: int) -> float | None:
    """Records a replica has taken, from its /metrics; None while it does not answer yet."""
    needle = "guardian_events_consumed_total{"
    try:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    except aiohttp.ClientError:
        return None
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(needle)
    )


async def _ready(http: aiohttp.ClientSession, port: int) -> bool:
    try:
        async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--deploys", type=int, default=50)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--replicas", type=int, default=1, help="guardian processes in one consumer group"
    )
    add_broker_arguments(parser)
    args = parser.parse_args()
    async with bench_broker(args) as broker:
        bootstrap = broker.bootstrap
        suffix = os.getpid()
        topic, deploy_topic = f"bench.metrics.{suffix}", f"bench.deploys.{suffix}"
        started = time.perf_counter()
        await produce_all(bootstrap, topic, deploy_topic, args)
        produce_s = time.perf_counter() - started
        bare = await bare_consumer(bootstrap, topic, args.events)
        guardian = await guardian_rate(bootstrap, args, topic, deploy_topic)
    print(
        orjson.dumps(
            {
                "benchmark": "throughput",
                "broker": broker.kind,
                "events": args.events,
                "services": args.services,
                "deploys": args.deploys,
                "partitions": args.partitions,
                "replicas": args.replicas,
                "produce_s": round(produce_s, 2),
                "bare_events_per_s": round(bare),
                "guardian_events_per_s": round(guardian),
                "ratio": round(guardian / bare, 3),
            }
        ).decode()
    )


if __name__ == "__main__":
    asyncio.run(main())

"""Detection latency: from producing the event that completes a breach to the command on Kafka.

Runs ``guardian run`` as a separate process on the embedded broker (or
``--bootstrap-servers``) while a background producer writes healthy metric
events at ``--rate`` per second. Each trial starts a blue-green deploy of its
own service, then produces one failing health check — the event that
completes the breach — and times until that deploy's rollback command is read
from ``rollback.commands``. Repeated for each ``--fetch-wait-ms`` setting;
prints one JSON line.

    python benchmarks/latency.py --trials 200 --fetch-wait-ms 10 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.brokers import add_broker_arguments, bench_broker  # noqa: E402
from guardian.ports import free_port  # noqa: E402


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def background_load(bootstrap: str, topic: str, rate: int, stop: asyncio.Event) -> int:
    """Healthy metric events at ``rate``/s across 500 services until stopped."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    sent = 0
    try:
        tick = 0.05
        per_tick = max(1, int(rate * tick))
        while not stop.is_set():
            started = time.perf_counter()
            now = _now_ms()
            for _ in range(per_tick):
                service = f"bg-{sent % 500:03d}"
                event = {
                    "kind": "metric",
                    "service": service,
                    "environment": "production",
                    "region": "us-east",
                    "timestamp": now,
                    "values": {"requests": 50, "errors": 0, "latency_p95_ms": 120.0},
                }
                await producer.send(topic, orjson.dumps(event), key=service.encode())
                sent += 1
            await asyncio.sleep(max(0.0, tick - (time.perf_counter() - started)))
    finally:
        await producer.stop()
    return sent


async def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    """Poll /readyz until the guardian is ready."""
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            if process.poll() is not None:
                raise SystemExit(f"guardian exited with {process.returncode}")
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("guardian never became ready")


async def run_setting(bootstrap: str, fetch_wait_ms: int, args: Any) -> dict[str, Any]:
    """Latency figures for one fetch-wait setting."""
    tag = f"{os.getpid()}-{fetch_wait_ms}"
    topics = {
        "GUARDIAN_DEPLOY_TOPIC": f"lat.deploy.{tag}",
        "GUARDIAN_METRIC_TOPIC": f"lat.metric.{tag}",
        "GUARDIAN_COMMAND_TOPIC": f"lat.commands.{tag}",
        "GUARDIAN_AUDIT_TOPIC": f"lat.audit.{tag}",
        "GUARDIAN_NOTIFICATION_TOPIC": f"lat.notify.{tag}",
        "GUARDIAN_DLQ_TOPIC": f"lat.dlq.{tag}",
        "GUARDIAN_STATE_TOPIC": f"lat.state.{tag}",
    }
    port = free_port()
    env = {
        **os.environ,
        **topics,
        "GUARDIAN_BOOTSTRAP_SERVERS": bootstrap,
        "GUARDIAN_GROUP_ID": f"lat-{tag}",
        "GUARDIAN_HTTP": f"127.0.0.1:{port}",
        "GUARDIAN_RULES": str(REPO / "rules"),
        "GUARDIAN_LOG_LEVEL": "warning",
        "GUARDIAN_FETCH_MAX_WAIT_MS": str(fetch_wait_ms),
        "GUARDIAN_SESSION_TIMEOUT_MS": "6000",
        "GUARDIAN_HEARTBEAT_INTERVAL_MS": "1000",
    }
    guardian = str(Path(sys.executable).with_name("guardian"))
    process = subprocess.Popen([guardian, "run"], env=env, stdout=subprocess.DEVNULL)
    stop = asyncio.Event()
    try:
        await wait_ready(port, process)
        load = asyncio.create_task(
            background_load(bootstrap, topics["GUARDIAN_METRIC_TOPIC"], args.rate, stop)
        )
        commands = AIOKafkaConsumer(
            topics["GUARDIAN_COMMAND_TOPIC"],
            bootstrap_servers=bootstrap,
            auto_offset_reset="latest",
            fetch_max_wait_ms=fetch_wait_ms,
            group_id=None,
        )
        await commands.start()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
        await producer.start()
        latencies: list[float] = []
        try:
            await asyncio.sleep(2)  # let the background load settle
            for trial in range(args.trials):
                service = f"lat-{trial:04d}"
                deploy_id = f"d-{tag}-{trial}"
                now = _now_ms()
                deploy = {
                    "kind": "deploy",
                    "type": "started",
                    "deploy_id": deploy_id,
                    "service": service,
                    "environment": "production",
                    "version": "2",
                    "previous_version": "1",
                    "strategy": "blue_green",
                    "component": "application",
                    "regions": ["us-east"],
                    "timestamp": now,
                }
                await producer.send_and_wait(
                    topics["GUARDIAN_DEPLOY_TOPIC"], orjson.dumps(deploy), key=service.encode()
                )
                check = {
                    "kind": "check",
                    "service": service,
                    "environment": "production",
                    "region": "us-east",
                    "deploy_id": deploy_id,
                    "check": "api_health",
                    "status": "fail",
                    "timestamp": now + 1,
                }
                sent_at = time.perf_counter()
                await producer.send(
                    topics["GUARDIAN_DEPLOY_TOPIC"], orjson.dumps(check), key=service.encode()
                )
                found = False
                while not found:
                    batches = await commands.getmany(timeout_ms=2000)
                    if not batches and time.perf_counter() - sent_at > 10:
                        raise SystemExit(f"no command for {deploy_id}")
                    for messages in batches.values():
                        for message in messages:
                            if orjson.loads(message.value).get("deploy_id") == deploy_id:
                                found = True
                latencies.append((time.perf_counter() - sent_at) * 1000)
        finally:
            stop.set()
            sent = await load
            await producer.stop()
            await commands.stop()
    finally:
        process.terminate()
        process.wait(timeout=30)
    latencies.sort()
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "fetch_max_wait_ms": fetch_wait_ms,
        "trials": len(latencies),
        "background_events": sent,
        "p50_ms": round(quantiles[49], 1),
        "p95_ms": round(quantiles[94], 1),
        "p99_ms": round(quantiles[98], 1),
        "max_ms": round(latencies[-1], 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--rate", type=int, default=5000, help="background events per second")
    parser.add_argument("--fetch-wait-ms", type=int, nargs="+", default=[10, 100])
    add_broker_arguments(parser)
    args = parser.parse_args()
    async with bench_broker(args) as broker:
        bootstrap = broker.bootstrap
        results = [await run_setting(bootstrap, wait, args) for wait in args.fetch_wait_ms]
    print(
        orjson.dumps(
            {"benchmark": "latency", "broker": broker.kind, "rate": args.rate, "results": results}
        ).decode()
    )


if __name__ == "__main__":
    asyncio.run(main())

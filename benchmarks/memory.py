"""Memory: resident set size of ``guardian run`` by number of active metric series.

For each requested series count, pre-produces ``--rounds`` metric events per
series (service × region) with 50 deploys active, runs ``guardian run`` as a
separate process with the default rule pack until it has consumed them all,
and reads its RSS from /proc. The growth per extra series is the slope
between the smallest and largest count. Prints one JSON line.

    python benchmarks/memory.py --series 1000 10000 20000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.brokers import add_broker_arguments, bench_broker  # noqa: E402
from guardian.ports import free_port  # noqa: E402

T0 = 1795478400000
REGIONS = ("us-east", "eu-west", "asia-east", "us-west")


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def produce(
    bootstrap: str, deploy_topic: str, metric_topic: str, series: int, rounds: int
) -> int:
    """Deploys for 50 services and ``rounds`` events for each series; return events written."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    services = max(1, series // len(REGIONS))
    written = 0
    try:
        for d in range(min(50, services)):
            service = f"svc-{d:05d}"
            deploy = {
                "kind": "deploy",
                "type": "started",
                "deploy_id": f"d-{d}",
                "service": service,
                "environment": "production",
                "version": "2",
                "previous_version": "1",
                "strategy": "rolling",
                "component": "application",
                "regions": list(REGIONS),
                "timestamp": T0 + 60_000,
            }
            await producer.send(deploy_topic, orjson.dumps(deploy), key=service.encode())
            written += 1
        pending = []
        for r in range(rounds):
            for s in range(services):
                service = f"svc-{s:05d}"
                for region in REGIONS:
                    event = {
                        "kind": "metric",
                        "service": service,
                        "environment": "production",
                        "region": region,
                        "timestamp": T0 + r * 10_000,
                        "values": {
                            "requests": 100,
                            "errors": 0,
                            "latency_p95_ms": 120.0,
                            "cpu_utilization": 0.4,
                            "memory_utilization": 0.5,
                        },
                    }
                    pending.append(
                        await producer.send(metric_topic, orjson.dumps(event), key=service.encode())
                    )
                    written += 1
            await asyncio.gather(*pending)
            pending.clear()
    finally:
        await producer.stop()
    return written


async def measure(bootstrap: str, series: int, rounds: int) -> dict[str, Any]:
    """RSS of a guardian that has judged ``series`` series."""
    tag = f"{os.getpid()}-{series}"
    deploy_topic, metric_topic = f"mem.deploy.{tag}", f"mem.metric.{tag}"
    written = await produce(bootstrap, deploy_topic, metric_topic, series, rounds)
    port = free_port()
    env = {
        **os.environ,
        "GUARDIAN_BOOTSTRAP_SERVERS": bootstrap,
        "GUARDIAN_GROUP_ID": f"mem-{tag}",
        "GUARDIAN_DEPLOY_TOPIC": deploy_topic,
        "GUARDIAN_METRIC_TOPIC": metric_topic,
        "GUARDIAN_HTTP": f"127.0.0.1:{port}",
        "GUARDIAN_RULES": str(REPO / "rules"),
        "GUARDIAN_LOG_LEVEL": "warning",
        "GUARDIAN_MAX_FUTURE_SKEW_S": str(10**9),
    }
    guardian = str(Path(sys.executable).with_name("guardian"))
    process = subprocess.Popen([guardian, "run"], env=env, stdout=subprocess.DEVNULL)
    tracked = 0.0
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(3000):
                if process.poll() is not None:
                    raise SystemExit(f"guardian exited with {process.returncode}")
                consumed = 0.0
                try:
                    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                        for line in (await response.text()).splitlines():
                            if line.startswith("guardian_events_consumed_total{"):
                                consumed += float(line.rsplit(" ", 1)[1])
                            if line.startswith("guardian_tracked_series "):
                                tracked = float(line.rsplit(" ", 1)[1])
                except aiohttp.ClientError:
                    pass
                if consumed >= written:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(6)  # let the stats loop publish tracked series
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                for line in (await response.text()).splitlines():
                    if line.startswith("guardian_tracked_series "):
                        tracked = float(line.rsplit(" ", 1)[1])
        rss = rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {
        "series": series,
        "tracked_series": int(tracked),
        "events": written,
        "rss_mb": round(rss, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, nargs="+", default=[1000, 10000, 20000])
    parser.add_argument("--rounds", type=int, default=6, help="events per series")
    add_broker_arguments(parser)
    args = parser.parse_args()
    async with bench_broker(args) as broker:
        bootstrap = broker.bootstrap
        results = [await measure(bootstrap, n, args.rounds) for n in sorted(args.series)]
    low, high = results[0], results[-1]
    per_series_kb = (
        (high["rss_mb"] - low["rss_mb"]) * 1024 / (high["series"] - low["series"])
        if high["series"] != low["series"]
        else None
    )
    print(
        orjson.dumps(
            {
                "benchmark": "memory",
                "broker": broker.kind,
                "results": results,
                "kb_per_extra_series": round(per_series_kb, 2) if per_series_kb else None,
            }
        ).decode()
    )


if __name__ == "__main__":
    asyncio.run(main())

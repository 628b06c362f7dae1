"""Memory: resident set size of ``guardian run`` by number of active metric series.

Two modes, each printing one JSON line with the figures and whether the
targets of issue 14 are met.

``--series N [N ...]`` (the default): for each count, pre-produces
``--rounds`` metric events per series (service × 4 regions), with live
deploys for ``--deploys`` services (``none``, ``all`` or a number; deploys
start before the first metric, so their windows fill), runs ``guardian run``
with the default rule pack as a separate process until it has consumed them
all, and reads its RSS from /proc. The KB per extra series is the slope
between the smallest and largest count. Targets: ≤ 4 KB per series with no
live deploy, ≤ 8 KB with one, ≤ 150 MB for 10,000 series with deploys. The
series cap is lifted (``GUARDIAN_MAX_SERIES``) so that every series is held.

``--names N``: the flood a bad label produces. A running guardian (default
settings: ``memory_budget_mb`` 256) first gets healthy traffic from
``--known`` services (4 regions each), then N distinct service names with one
event each and no deploy, then bad traffic from two known services: one with
a deploy (a rollback is expected) and one without (the always-on error-rate
alert is expected). Targets: RSS under 300 MB, and both decisions made.

    python benchmarks/memory.py --series 1000 10000 --deploys none --rounds 4
    python benchmarks/memory.py --series 1000 10000 --deploys all --rounds 4
    python benchmarks/memory.py --names 200000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
HEALTHY = {
    "requests": 100,
    "errors": 0,
    "latency_p95_ms": 120.0,
    "cpu_utilization": 0.4,
    "memory_utilization": 0.5,
}
BAD = {**HEALTHY, "errors": 20}
TARGET_KB_IDLE, TARGET_KB_DEPLOY, TARGET_MB_10K_DEPLOYS, TARGET_MB_NAMES = 4.0, 8.0, 150.0, 300.0


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def deploy_event(service: str, at_ms: int) -> bytes:
    """A rolling deploy of ``service`` to every region, started at ``at_ms``."""
    return orjson.dumps(
        {
            "kind": "deploy",
            "type": "started",
            "deploy_id": f"d-{service}",
            "service": service,
            "environment": "production",
            "version": "2",
            "previous_version": "1",
            "strategy": "rolling",
            "component": "application",
            "regions": list(REGIONS),
            "timestamp": at_ms,
        }
    )


def metric_event(service: str, region: str, at_ms: int, values: dict[str, Any]) -> bytes:
    """One metric event."""
    return orjson.dumps(
        {
            "kind": "metric",
            "service": service,
            "environment": "production",
            "region": region,
            "timestamp": at_ms,
            "values": values,
        }
    )


async def produce_series(
    bootstrap: str, topics: tuple[str, str], series: int, rounds: int, deploys: int
) -> int:
    """Deploys for ``deploys`` services and ``rounds`` events per series; return events written."""
    deploy_topic, metric_topic = topics
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    services = max(1, series // len(REGIONS))
    written = 0
    try:
        for d in range(min(deploys, services)):
            service = f"svc-{d:05d}"
            await producer.send(deploy_topic, deploy_event(service, T0), key=service.encode())
            written += 1
        for r in range(rounds):
            pending = []
            for s in range(services):
                service = f"svc-{s:05d}"
                for region in REGIONS:
                    value = metric_event(service, region, T0 + (r + 1) * 10_000, HEALTHY)
                    pending.append(await producer.send(metric_topic, value, key=service.encode()))
                    written += 1
            await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return written


class Guardian:
    """``guardian run`` as a separate process, read through its /metrics page."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port

    async def metrics(self) -> dict[str, float]:
        """Every sample on /metrics by its full name (labels included); {} if unreachable."""
        samples: dict[str, float] = {}
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{self.port}/metrics") as response,
            ):
                for line in (await response.text()).splitlines():
                    if line and not line.startswith("#"):
                        name, _, value = line.rpartition(" ")
                        samples[name] = float(value)
        except aiohttp.ClientError:
            pass
        return samples

    async def consumed(self) -> float:
        """Records taken from the input topics so far."""
        samples = await self.metrics()
        return sum(v for k, v in samples.items() if k.startswith("guardian_events_consumed_total"))

    async def wait_consumed(self, total: int, timeout_s: float = 600) -> None:
        """Until ``total`` records have been consumed (or the timeout)."""
        for _ in range(int(timeout_s * 10)):
            if self.process.poll() is not None:
                raise SystemExit(f"guardian exited with {self.process.returncode}")
            if await self.consumed() >= total:
                return
            await asyncio.sleep(0.1)
        raise SystemExit(f"guardian consumed {await self.consumed()} of {total} records")

    def rss_mb(self) -> float:
        """Its resident set size."""
        return rss_mb(self.process.pid)


@asynccontextmanager
async def guardian(bootstrap: str, tag: str, **settings: str) -> AsyncIterator[Guardian]:
    """A ``guardian run`` on the topics of ``tag``, stopped on exit."""
    port = free_port()
    env = {
        **os.environ,
        "GUARDIAN_BOOTSTRAP_SERVERS": bootstrap,
        "GUARDIAN_GROUP_ID": f"mem-{tag}",
        "GUARDIAN_DEPLOY_TOPIC": f"mem.deploy.{tag}",
        "GUARDIAN_METRIC_TOPIC": f"mem.metric.{tag}",
        "GUARDIAN_HTTP": f"127.0.0.1:{port}",
        "GUARDIAN_RULES": str(REPO / "rules"),
        "GUARDIAN_LOG_LEVEL": "warning",
        "GUARDIAN_MAX_FUTURE_SKEW_S": str(10**9),
        **{f"GUARDIAN_{k.upper()}": v for k, v in settings.items()},
    }
    command = [str(Path(sys.executable).with_name("guardian")), "run"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        yield Guardian(process, port)
    finally:
        process.terminate()
        process.wait(timeout=30)


async def measure_series(bootstrap: str, series: int, rounds: int, deploys: int) -> dict[str, Any]:
    """RSS of a guardian that has judged ``series`` series."""
    tag = f"{os.getpid()}-{series}-{deploys}"
    topics = (f"mem.deploy.{tag}", f"mem.metric.{tag}")
    written = await produce_series(bootstrap, topics, series, rounds, deploys)
    async with guardian(bootstrap, tag, max_series=str(10**7)) as run:
        await run.wait_consumed(written)
        await asyncio.sleep(6)  # let the stats loop publish tracked series
        samples = await run.metrics()
        rss = run.rss_mb()
    return {
        "series": series,
        "tracked_series": int(samples.get("guardian_tracked_series", 0)),
        "live_deploys": int(samples.get("guardian_active_deploys", 0)),
        "events": written,
        "rss_mb": round(rss, 1),
    }


async def measure_names(bootstrap: str, names: int, known: int) -> dict[str, Any]:
    """RSS after a flood of ``names`` new service names, and whether known services are judged."""
    tag = f"{os.getpid()}-names-{names}"
    deploy_topic, metric_topic = f"mem.deploy.{tag}", f"mem.metric.{tag}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    written = 0

    async def send_all(topic: str, records: list[tuple[str, bytes]]) -> None:
        nonlocal written
        pending = [await producer.send(topic, value, key=key.encode()) for key, value in records]
        await asyncio.gather(*pending)
        written += len(records)

    known_services = [f"known-{k:04d}" for k in range(known)]
    bad_deployed, bad_alerting = known_services[0], known_services[1]
    try:
        # Both input topics exist before the guardian subscribes: a step of no deploy.
        gone = orjson.loads(deploy_event("absent", T0))
        gone["type"] = "rolled_back"
        await send_all(deploy_topic, [("absent", orjson.dumps(gone))])
        async with guardian(bootstrap, tag) as run:
            # 1. the services the guardian knows: 3 minutes of healthy traffic
            for r in range(18):
                at = T0 + r * 10_000
                batch = [
                    (s, metric_event(s, region, at, HEALTHY))
                    for s in known_services
                    for region in REGIONS
                ]
                await send_all(metric_topic, batch)
            await run.wait_consumed(written)
            await asyncio.sleep(6)  # the stats loop publishes tracked series every 5 s
            before = await run.metrics()
            rss_known = run.rss_mb()
            # 2. the flood: one event each from ``names`` names never seen
            chunk = 20_000
            for first in range(0, names, chunk):
                batch = []
                for n in range(first, min(names, first + chunk)):
                    service = f"flood-{n:07d}"
                    batch.append((service, metric_event(service, REGIONS[n % 4], T0, HEALTHY)))
                await send_all(metric_topic, batch)
            await run.wait_consumed(written)
            rss_flood = run.rss_mb()
            # 3. bad traffic from two known services, one of them deploying
            start = T0 + 180_000
            await send_all(deploy_topic, [(bad_deployed, deploy_event(bad_deployed, start))])
            for r in range(66):  # 11 minutes: the always-on alert needs 5m for and 5m window
                at = start + (r + 1) * 10_000
                batch = [
                    (
                        s,
                        metric_event(
                            s, region, at, BAD if s in (bad_deployed, bad_alerting) else HEALTHY
                        ),
                    )
                    for s in known_services
                    for region in REGIONS
                ]
                await send_all(metric_topic, batch)
            await run.wait_consumed(written)
            await asyncio.sleep(6)  # the stats loop publishes refusals every 5 s
            after = await run.metrics()
            rss_end = run.rss_mb()
    finally:
        await producer.stop()

    def total(samples: dict[str, float], prefix: str) -> float:
        return sum(v for k, v in samples.items() if k.startswith(prefix))

    decisions = {
        k.split("{", 1)[1].rstrip("}"): int(v)
        for k, v in after.items()
        if k.startswith("guardian_decisions_total{")
    }
    rollback = total(after, "guardian_rollback_commands_total") >= 1
    alert = any('rule="alert-error-rate"' in k for k in decisions)
    return {
        "names": names,
        "known_series": int(before.get("guardian_tracked_series", 0)),
        "rss_mb_known": round(rss_known, 1),
        "rss_mb_after_flood": round(rss_flood, 1),
        "rss_mb_end": round(rss_end, 1),
        "series_cap": int(after.get("guardian_series_cap", 0)),
        "tracked_series": int(after.get("guardian_tracked_series", 0)),
        "series_refused": {
            k.split('"')[1]: int(v)
            for k, v in after.items()
            if k.startswith("guardian_series_refused_total{")
        },
        "decisions": decisions,
        "known_deploy_rolled_back": rollback,
        "known_service_alerted": alert,
        "target_rss_met": max(rss_flood, rss_end) < TARGET_MB_NAMES,
        "target_judging_met": rollback and alert,
    }


def deploys_of(text: str) -> int:
    """``none``, ``all`` or a number of deploying services."""
    named = {"none": 0, "all": 10**9}
    return named[text] if text in named else int(text)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rounds", type=int, default=6, help="events per series")
    parser.add_argument("--deploys", default="50", help="services with a live deploy: none, all, N")
    parser.add_argument("--names", type=int, help="flood mode: this many new service names")
    parser.add_argument("--known", type=int, default=250, help="flood mode: services known first")
    add_broker_arguments(parser)
    args = parser.parse_args()
    async with bench_broker(args) as broker:
        bootstrap = broker.bootstrap
        if args.names:
            flood = await measure_names(bootstrap, args.names, args.known)
            print(orjson.dumps({"benchmark": "memory", "broker": broker.kind, **flood}).decode())
            return
        deploys = deploys_of(args.deploys)
        results = [
            await measure_series(bootstrap, n, args.rounds, deploys) for n in sorted(args.series)
        ]
    low, high = results[0], results[-1]
    per_series_kb = (
        (high["rss_mb"] - low["rss_mb"]) * 1024 / (high["series"] - low["series"])
        if high["series"] != low["series"]
        else None
    )
    report: dict[str, Any] = {
        "benchmark": "memory",
        "broker": broker.kind,
        "deploys": args.deploys,
        "results": results,
        "kb_per_extra_series": round(per_series_kb, 2) if per_series_kb else None,
    }
    if per_series_kb is not None and args.deploys in ("none", "all"):
        target = TARGET_KB_IDLE if args.deploys == "none" else TARGET_KB_DEPLOY
        report["target_kb_per_series"] = target
        report["target_kb_met"] = per_series_kb <= target
    at_10k = next((r for r in results if r["series"] == 10_000), None)
    if at_10k is not None and args.deploys == "all":
        report["target_mb_10k_deploys"] = TARGET_MB_10K_DEPLOYS
        report["target_mb_10k_met"] = at_10k["rss_mb"] <= TARGET_MB_10K_DEPLOYS
    print(orjson.dumps(report).decode())


if __name__ == "__main__":
    asyncio.run(main())

"""Manual rollback API under load while the daemon consumes ~5,000 events/s; one JSON line out.

Three processes beside the broker, so the load generator never shares an
event loop with what it measures:

- the **daemon** (``--serve``): ``Daemon`` with ``ManualRollbacks`` on its
  control plane; the deploy lookup is synthetic (any service has a deploy);
- the **event producer** (``--produce``): deploy events, then healthy metric
  events at ``--events-per-s`` (wall-clock timestamps) for the whole run;
- this process, the **load generator**: an open-loop aiohttp client firing
  at ``--rate`` for ``--duration`` seconds over ``--connections`` keep-alive
  connections, mixing GET list (70%), GET one (10%), POST request (10%) and
  POST approve by a second identity (10%).

Latency is measured from each request's *scheduled* send time (no
coordinated omission), so a stall shows up in the percentiles instead of
lowering the rate. Embedded broker unless ``--bootstrap-servers``.

    python benchmarks/api.py --rate 1000 --duration 20 --events-per-s 5000
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.brokers import add_broker_arguments, bench_broker  # noqa: E402
from benchmarks.procstat import cpu_seconds  # noqa: E402
from guardian.ports import free_port  # noqa: E402

TOKENS = {"bench-a": "bench-token-a-0123456789", "bench-b": "bench-token-b-0123456789"}
SERVICES = 200


async def serve(args: argparse.Namespace) -> None:
    """Run the daemon with the manual rollback API until SIGTERM."""
    from guardian.api import ManualRollbacks
    from guardian.config.settings import Settings
    from guardian.daemon.app import Daemon
    from guardian.engine.decision import DeployInfo
    from guardian.gc_tuning import tune_gc
    from guardian.kafka.sink import KafkaSink
    from guardian.logs import configure_logging
    from guardian.metrics import GuardianMetrics

    configure_logging("warning", "json")
    settings = Settings.model_validate(
        {
            "bootstrap_servers": args.bootstrap_servers,
            "http": f"127.0.0.1:{args.http_port}",
            "tokens_file": Path(args.tokens),
            "signing_key": "bench-key",
            "rules": REPO / "rules",
            "max_batch_records": args.max_batch,
            **topic_names(args.prefix),
        }
    )

    def lookup(service: str, environment: str) -> DeployInfo:
        return DeployInfo(
            deploy_id=f"d-{service}",
            service=service,
            environment=environment,
            version="2.0.0",
            previous_version="1.9.0",
            strategy="canary",
            component="application",
            regions=("us-east",),
            started_at_ms=int(time.time() * 1000),
        )

    metrics = GuardianMetrics()
    bootstrap = args.bootstrap_servers
    tune_gc()  # as `guardian run` does; without it full collections make the latency tail
    async with (
        KafkaSink(settings, bootstrap) as sink,
        ManualRollbacks(settings, bootstrap, sink, lookup, metrics) as manual,
    ):
        daemon = Daemon(settings, metrics, route_installers=(manual.install,))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, daemon.request_stop)
        background = asyncio.create_task(manual.run())
        try:
            await daemon.run()
        finally:
            background.cancel()


def topic_names(prefix: str) -> dict[str, str]:
    """Topic settings unique to one benchmark run."""
    names = "deploy.events metric.events rollback.commands guardian.audit guardian.dlq"
    names += " guardian.notifications guardian.state"
    settings = ("deploy", "metric", "command", "audit", "dlq", "notification", "state")
    topics = {f"{k}_topic": f"{prefix}.{n}" for k, n in zip(settings, names.split(), strict=True)}
    return {**topics, "group_id": f"{prefix}-group"}


async def produce(args: argparse.Namespace) -> None:
    """Deploy events, then healthy metric events at the target rate until SIGTERM."""
    from aiokafka import AIOKafkaProducer

    topics = topic_names(args.prefix)
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap_servers, linger_ms=10, acks=1)
    await producer.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        now = int(time.time() * 1000)
        for s in range(SERVICES):
            service = f"evsvc-{s:03d}"
            deploy = {
                "kind": "deploy", "type": "started", "deploy_id": f"ev-{s}",
                "service": service, "environment": "production", "version": "2.0.0",
                "previous_version": "1.9.0", "strategy": "canary",
                "component": "application", "regions": ["us-east"],
                "traffic_percent": 5, "timestamp": now, "actor": "bench",
            }  # fmt: skip
            await producer.send(topics["deploy_topic"], orjson.dumps(deploy), key=service.encode())
        keys = [f"evsvc-{s:03d}".encode() for s in range(SERVICES)]
        templates = [
            b'{"kind":"metric","service":"evsvc-%03d","environment":"production",' % s
            + b'"region":"us-east","cohort":"canary","version":"2.0.0","timestamp":%d,'
            + b'"values":{"requests":100,"errors":%d,"latency_p95_ms":%.1f}}'
            for s in range(SERVICES)
        ]
        tick_s = 0.01
        per_tick = max(1, round(args.events_per_s * tick_s))
        start = time.monotonic()
        sent = 0
        while not stop.is_set():
            ts = int(time.time() * 1000)
            for _ in range(per_tick):
                s = sent % SERVICES
                errors, p95 = random.randint(0, 1), round(random.uniform(110, 130), 1)
                event = templates[s] % (ts, errors, p95)  # bytes %-formatting: cheap per event
                await producer.send(topics["metric_topic"], event, key=keys[s])
                sent += 1
            behind = start + (sent / args.events_per_s) - time.monotonic()
            if behind > 0:
                await asyncio.sleep(behind)
        await producer.flush()
        print(orjson.dumps({"produced": sent, "seconds": time.monotonic() - start}).decode())
    finally:
        await producer.stop()


class Load:
    """Open-loop mixed load with per-operation latencies."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.session = session
        self.latencies: dict[str, list[float]] = collections.defaultdict(list)
        self.statuses: collections.Counter[str] = collections.Counter()
        self.errors = 0
        self.pending: collections.deque[str] = collections.deque()
        self.known: list[str] = []

    async def call(
        self, method: str, path: str, who: str, body: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {TOKENS[who]}"}
        async with self.session.request(
            method, self.base + path, json=body, headers=headers
        ) as resp:
            return resp.status, await resp.read()

    async def one(self, op: str, scheduled: float) -> None:
        try:
            if op == "list":
                status, _ = await self.call("GET", "/v1/rollbacks?limit=20", "bench-b")
            elif op == "show" and self.known:
                rid = random.choice(self.known)
                status, _ = await self.call("GET", f"/v1/rollbacks/{rid}", "bench-b")
            elif op == "approve" and self.pending:
                rid = self.pending.popleft()
                status, _ = await self.call("POST", f"/v1/rollbacks/{rid}/approve", "bench-b")
            else:
                op = "request"
                service = f"api-{uuid.uuid4().hex[:12]}"
                body = {"service": service, "environment": "production", "reason": "benchmark"}
                status, data = await self.call("POST", "/v1/rollbacks", "bench-a", body)
                if status == 201:
                    rid = orjson.loads(data)["id"]
                    self.pending.append(rid)
                    self.known.append(rid)
            self.statuses[f"{op}:{status}"] += 1
            self.errors += status >= 400
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.errors += 1
            self.statuses[f"{op}:{type(exc).__name__}"] += 1
        self.latencies[op].append((time.perf_counter() - scheduled) * 1000)


def pct(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank), in ms, rounded."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def drive(args: argparse.Namespace, base: str) -> dict[str, Any]:
    """Run the load; return the figures."""
    # The load generator's own collector pauses would count as API latency.
    from guardian.gc_tuning import tune_gc

    tune_gc()
    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        load = Load(base, session)
        for _ in range(20):  # seed a few requests so show/approve have targets
            await load.one("request", time.perf_counter())
        load.latencies.clear()
        load.statuses.clear()
        ops = ["list"] * 7 + ["show", "request", "approve"]
        total = int(args.rate * args.duration)
        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        for i in range(total):
            scheduled = start + i / args.rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(load.one(ops[i % len(ops)], scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    everything = [v for values in load.latencies.values() for v in values]
    return {
        "target_rps": args.rate,
        "achieved_rps": round(len(everything) / elapsed, 1),
        "requests": len(everything),
        "errors": load.errors,
        "p50_ms": pct(everything, 0.50),
        "p95_ms": pct(everything, 0.95),
        "p99_ms": pct(everything, 0.99),
        "max_ms": round(max(everything), 2) if everything else 0.0,
        "by_op": {
            op: {"n": len(v), "p50_ms": pct(v, 0.5), "p95_ms": pct(v, 0.95), "p99_ms": pct(v, 0.99)}
            for op, v in sorted(load.latencies.items())
        },
        "statuses": dict(sorted(load.statuses.items())),
    }


async def consumed(base: str) -> float:
    """guardian_events_consumed_total summed over topics, from the daemon's /metrics."""
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as resp:
        text = await resp.text()
    pattern = r"^guardian_events_consumed_total\{[^}]*\} ([0-9.e+]+)$"
    return sum(float(m) for m in re.findall(pattern, text, flags=re.MULTILINE))


def own_cpu_s() -> float:
    """CPU seconds used by this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def wait_ready(base: str, timeout_s: float = 60.0) -> None:
    """Until /readyz answers 200 and the API answers."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{base}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the daemon did not become ready")


async def main(args: argparse.Namespace) -> None:
    """Broker, daemon, producer, load; print one JSON line."""
    stack = contextlib.AsyncExitStack()
    broker = await stack.enter_async_context(bench_broker(args))
    args.bootstrap_servers = broker.bootstrap
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        from guardian.manual.tokens import yaml_entry

        tokens = Path(tmp) / "tokens.yaml"
        tokens.write_text(
            "tokens:\n" + "\n".join(yaml_entry(i, ["SRE"], t) for i, t in TOKENS.items()) + "\n"
        )
        common = ["--bootstrap-servers", args.bootstrap_servers, "--prefix", prefix]
        common += ["--max-batch", str(args.max_batch)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        try:
            procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--serve", "--http-port", str(port),
                     "--tokens", str(tokens), *common],
                    env=env,
                )
            )  # fmt: skip
            await wait_ready(base)
            procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--produce",
                     "--events-per-s", str(args.events_per_s), *common],
                    env=env, stdout=subprocess.PIPE,
                )
            )  # fmt: skip
            await asyncio.sleep(args.warmup)
            before, t0 = await consumed(base), time.monotonic()
            pids = {"daemon": procs[0].pid, "producer": procs[1].pid}
            pids |= {"broker": broker.pid} if broker.pid else {}
            cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()} | {"loadgen": own_cpu_s()}
            figures = await drive(args, base)
            after, t1 = await consumed(base), time.monotonic()
            cpu1 = {name: cpu_seconds(pid) for name, pid in pids.items()} | {"loadgen": own_cpu_s()}
            figures["cpu_percent"] = {k: round((cpu1[k] - cpu0[k]) / (t1 - t0) * 100) for k in cpu0}
            figures["events_consumed_per_s"] = round((after - before) / (t1 - t0), 1)
            # Other work on the machine shows here: the figures mean little when it is busy.
            figures["machine"] = {"cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]}
            keys = ("events_per_s", "connections", "max_batch", "duration", "bootstrap_servers")
            figures["config"] = {k: getattr(args, k) for k in keys} | {"broker": broker.kind}
            print(orjson.dumps(figures).decode(), flush=True)
        finally:
            for proc in reversed(procs):
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            await stack.aclose()


def parse() -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=1000.0, help="target requests/s")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--events-per-s", type=float, default=5000.0, help="input events/s")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of events first")
    parser.add_argument("--max-batch", type=int, default=5000, help="daemon max_batch_records")
    add_broker_arguments(parser)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--produce", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--http-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--tokens", default="", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="bench", help=argparse.SUPPRESS)
    return parser.parse_args()


def run(coro: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when installed, as ``guardian run`` does."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)


if __name__ == "__main__":
    arguments = parse()
    if arguments.serve:
        run(serve(arguments))
    elif arguments.produce:
        run(produce(arguments))
    else:
        run(main(arguments))

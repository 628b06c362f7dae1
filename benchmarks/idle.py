"""Idle cost: CPU a guardian with nothing to judge takes, and what it costs its broker.

A sidecar spends most of its life idle, and its fetch wait decides how often
it asks the broker for data that is not there. For each ``--fetch-wait-ms``
setting this starts the embedded broker and ``guardian run`` on it (separate
processes), lets them settle, then reads both processes' CPU time from
``/proc`` over ``--seconds`` with no events produced. Prints one JSON line;
CPU is in percent of one core.

    python benchmarks/idle.py --fetch-wait-ms 10 100 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.brokers import add_broker_arguments, bench_broker  # noqa: E402
from benchmarks.procstat import cpu_seconds  # noqa: E402
from guardian.ports import free_port  # noqa: E402


async def idle_cpu(
    args: argparse.Namespace, fetch_wait_ms: int, settle_s: float, seconds: float
) -> dict[str, float]:
    """CPU of one guardian and its broker over ``seconds`` of idleness."""
    async with bench_broker(args) as broker:
        port = free_port()
        env = {
            **os.environ,
            "GUARDIAN_BOOTSTRAP_SERVERS": broker.bootstrap,
            "GUARDIAN_GROUP_ID": f"idle-{fetch_wait_ms}",
            "GUARDIAN_HTTP": f"127.0.0.1:{port}",
            "GUARDIAN_RULES": str(REPO / "rules"),
            "GUARDIAN_LOG_LEVEL": "warning",
            "GUARDIAN_FETCH_MAX_WAIT_MS": str(fetch_wait_ms),
        }
        guardian = str(Path(sys.executable).with_name("guardian"))
        process = subprocess.Popen(
            [guardian, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            await asyncio.sleep(settle_s)  # join the group, create topics, go quiet
            if process.poll() is not None:
                raise RuntimeError(f"guardian exited with {process.returncode}")
            broker_pid = broker.pid
            if broker_pid is None:
                raise SystemExit("idle.py measures its own broker: use --kafka or the default")
            g0, b0, t0 = cpu_seconds(process.pid), cpu_seconds(broker_pid), time.monotonic()
            await asyncio.sleep(seconds)
            g1, b1, t1 = cpu_seconds(process.pid), cpu_seconds(broker_pid), time.monotonic()
        finally:
            process.terminate()
            process.wait(timeout=30)
    wall = t1 - t0
    return {
        "guardian_cpu_pct": round((g1 - g0) / wall * 100, 1),
        "broker_cpu_pct": round((b1 - b0) / wall * 100, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fetch-wait-ms", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle-s", type=float, default=15.0)
    add_broker_arguments(parser)
    args = parser.parse_args()
    results = {
        str(wait): await idle_cpu(args, wait, args.settle_s, args.seconds)
        for wait in args.fetch_wait_ms
    }
    broker = "kafka" if args.kafka else "external" if args.bootstrap_servers else "embedded"
    summary = {"benchmark": "idle", "broker": broker, "seconds": args.seconds}
    print(json.dumps({**summary, "by_fetch_wait_ms": results}))


if __name__ == "__main__":
    asyncio.run(main())

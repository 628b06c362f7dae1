"""The broker a benchmark runs on: the embedded one (default), Apache Kafka, or a given cluster.

Every benchmark takes ``--bootstrap-servers HOST:PORT`` (a cluster you run),
``--kafka`` (a one-node Apache Kafka started through ``scripts/kafka`` in a
temporary directory and purged afterwards; ``--kafka-brokers N`` for more
nodes), or neither (the embedded Tansu broker). The figures name the broker
they were measured on (``"broker"`` in their JSON line).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from guardian.kafka.embedded import EmbeddedBroker

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "kafka"


@dataclass(frozen=True)
class BenchBroker:
    """Where the benchmark's clients connect, and what kind of broker that is."""

    bootstrap: str
    kind: str  # "embedded", "kafka" (started here) or "external"
    pid: int | None = None  # the (first) broker process, for CPU figures; None if not ours


def add_broker_arguments(parser: argparse.ArgumentParser) -> None:
    """``--bootstrap-servers``, ``--kafka`` and ``--kafka-brokers``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--bootstrap-servers", default=None, help="a Kafka cluster you run")
    group.add_argument(
        "--kafka", action="store_true", help="start Apache Kafka (scripts/kafka) for this run"
    )
    parser.add_argument("--kafka-brokers", type=int, default=1, help="nodes with --kafka")


@contextlib.asynccontextmanager
async def bench_broker(args: argparse.Namespace) -> AsyncIterator[BenchBroker]:
    """The broker the arguments ask for, started for the benchmark if it is ours."""
    if args.bootstrap_servers:
        yield BenchBroker(args.bootstrap_servers, "external")
        return
    if args.kafka:
        with tempfile.TemporaryDirectory(prefix="bench-kafka-") as directory:
            started = subprocess.run(
                [SCRIPT, "start", "--brokers", str(args.kafka_brokers), "--dir", directory],
                check=True,
                capture_output=True,
                text=True,
            )
            bootstrap = started.stdout.strip().splitlines()[-1].removeprefix("bootstrap=")
            nodes = json.loads((Path(directory) / "cluster.json").read_text())["nodes"]
            try:
                yield BenchBroker(bootstrap, "kafka", nodes[0]["pid"])
            finally:
                subprocess.run(
                    [SCRIPT, "stop", "--dir", directory, "--purge"], check=True, capture_output=True
                )
        return
    async with EmbeddedBroker() as broker:
        yield BenchBroker(broker.bootstrap_servers, "embedded", broker.pid)

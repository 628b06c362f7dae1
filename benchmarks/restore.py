"""Restore time on Apache Kafka: does a compacted state topic keep restore bounded?

Writes ``--services`` × ``--updates`` snapshots (interleaved, as services
change over time) to a compacted topic created the way the guardian creates
its state topic (``compacted_topic_config``, with ``--segment-ms`` as
``state_segment_ms``). It times ``read_latest`` once before the cleaner ran,
then waits ``--segment-ms``, writes one record per partition (any write rolls
a segment that is old enough, as the guardian's steady snapshots do), waits
until the log cleaner has compacted the closed segments, and times
``read_latest`` again, counting the records it read. Every service's latest
snapshot must come back. Prints one JSON line. With a long ``--segment-ms``
and ``--before-only`` it shows what a restore costs when nothing is compacted.

Starts its own one-node Kafka (``scripts/kafka`` through ``KafkaCluster``,
in a temporary directory) unless ``--bootstrap-servers`` names one. The
embedded broker never compacts, so it is not offered.

    .venv/bin/python benchmarks/restore.py [--services 100] [--updates 1000]
    .venv/bin/python benchmarks/restore.py --segment-ms 600000 --before-only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from guardian.config.settings import Settings  # noqa: E402 - the repo root is put on the path
from guardian.kafka.admin import compacted_topic_config, create_missing_topics  # noqa: E402
from guardian.kafka.state_store import read_latest  # noqa: E402
from tests.support.brokers import KafkaCluster  # noqa: E402

ROLL_KEY = b"restore-benchmark-roll"


def _key(service: int) -> bytes:
    """A state key as the daemon writes it: service NUL environment."""
    return f"svc-{service:04d}\x00prod".encode()


async def _write(bootstrap: str, topic: str, services: int, updates: int, value_bytes: int) -> None:
    """Every service's updates, round after round; waits for every acknowledgement."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    pad = "x" * value_bytes
    try:
        futures: list[asyncio.Future[object]] = []
        for update in range(updates):
            for service in range(services):
                value = orjson.dumps({"service": service, "update": update, "pad": pad})
                futures.append(await producer.send(topic, key=_key(service), value=value))
            if len(futures) >= 10_000:  # bounded memory, batches stay full
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _roll(bootstrap: str, topic: str, partitions: int) -> None:
    """One record per partition: a write is what rolls a segment older than segment.ms."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition in range(partitions):
            await producer.send_and_wait(topic, key=ROLL_KEY, value=b"{}", partition=partition)
    finally:
        await producer.stop()


async def _timed_restore(
    settings: Settings, bootstrap: str, topic: str
) -> tuple[int, float, dict[bytes, bytes]]:
    """Records read and seconds taken by one ``read_latest`` of the topic."""
    read = 0

    def keep(key: bytes) -> bool:
        nonlocal read
        read += 1  # called once for every keyed record the scan hands over
        return key != ROLL_KEY

    began = time.perf_counter()
    latest = await read_latest(settings, bootstrap, topic, timeout_s=300, keep=keep)
    return read, time.perf_counter() - began, latest


def _check(latest: dict[bytes, bytes], services: int, updates: int) -> None:
    """Every service's newest update came back, and nothing else."""
    assert len(latest) == services, f"{len(latest)} keys restored, {services} written"  # noqa: S101
    for value in latest.values():
        assert orjson.loads(value)["update"] == updates - 1  # noqa: S101


async def measure(args: argparse.Namespace, bootstrap: str) -> dict[str, object]:
    """Write, restore, compact, restore again; return the figures."""
    topic = f"restore-bench-{int(time.time())}"
    settings = Settings(
        bootstrap_servers=bootstrap,
        state_topic=topic,
        state_segment_ms=args.segment_ms,
        topic_partitions=args.partitions,
    )
    await create_missing_topics(settings, bootstrap, {topic: compacted_topic_config(settings)})
    began = time.perf_counter()
    await _write(bootstrap, topic, args.services, args.updates, args.value_bytes)
    write_s = time.perf_counter() - began
    before_read, before_s, latest = await _timed_restore(settings, bootstrap, topic)
    _check(latest, args.services, args.updates)
    figures: dict[str, object] = {
        "services": args.services,
        "updates_written": args.services * args.updates,
        "value_bytes": args.value_bytes,
        "partitions": args.partitions,
        "segment_ms": args.segment_ms,
        "write_s": round(write_s, 2),
        "records_read_before_compaction": before_read,
        "restore_s_before_compaction": round(before_s, 3),
    }
    if args.before_only:
        return figures

    await asyncio.sleep(args.segment_ms / 1000 + 0.5)
    await _roll(bootstrap, topic, args.partitions)
    bound = args.services + args.partitions
    waited = time.perf_counter()
    while True:
        read, _, _ = await _timed_restore(settings, bootstrap, topic)
        if read <= bound * 1.1 or time.perf_counter() - waited > args.wait_s:
            break
        await asyncio.sleep(2)
    compaction_s = time.perf_counter() - waited
    timings = []
    for _ in range(args.repeat):
        read, seconds, latest = await _timed_restore(settings, bootstrap, topic)
        _check(latest, args.services, args.updates)
        timings.append(seconds)
    return figures | {
        "compaction_wait_s": round(compaction_s, 1),
        "records_read_at_restore": read,
        "restore_s": round(statistics.median(timings), 3),
        "restored_keys": len(latest),
    }


async def main() -> None:
    """Parse the arguments, find or start a broker, print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers", help="an Apache Kafka to use (default: start one)")
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--updates", type=int, default=1000, help="updates per service")
    parser.add_argument("--value-bytes", type=int, default=512, help="padding per snapshot")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--segment-ms", type=int, default=2000, help="state_segment_ms")
    parser.add_argument("--wait-s", type=float, default=120, help="longest wait for the cleaner")
    parser.add_argument("--repeat", type=int, default=3, help="timed restores after compaction")
    parser.add_argument(
        "--before-only",
        action="store_true",
        help="stop after the restore right after writing (with a long --segment-ms: no compaction)",
    )
    args = parser.parse_args()
    if args.bootstrap_servers:
        figures = await measure(args, args.bootstrap_servers)
    else:
        with tempfile.TemporaryDirectory(prefix="restore-bench-") as directory:
            cluster = KafkaCluster(Path(directory))
            try:
                figures = await measure(args, cluster.start())
            finally:
                cluster.stop(purge=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())

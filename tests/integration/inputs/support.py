"""The daemon in-process for input tests, and remote-write posting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from guardian.config.settings import Settings
from guardian.daemon.app import Daemon
from guardian.inputs.prompb.remote_pb2 import WriteRequest
from guardian.inputs.remote_write import encode_write_request

INGEST_TOKEN = "tok-ingest-0123456789"
INGEST = {
    "ingester": (["ingest"], INGEST_TOKEN),
    "alice": (["SRE"], "tok-alice-0123456789"),
}


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Daemon]:
    """Run a daemon until the block ends, then drain it and surface any crash."""
    daemon = Daemon(settings)
    task = asyncio.create_task(daemon.run())
    try:
        deadline = asyncio.get_running_loop().time() + 45
        while not daemon.readiness.ready:
            if task.done():
                task.result()
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not ready: {daemon.readiness.failing()}")
            await asyncio.sleep(0.05)
        yield daemon
    finally:
        daemon.request_stop()
        await asyncio.wait_for(task, timeout=30)


async def post_write(
    port: int, body: bytes | WriteRequest, token: str | None = INGEST_TOKEN
) -> tuple[int, str]:
    """POST a remote-write body; the status and the response text."""
    data = encode_write_request(body) if isinstance(body, WriteRequest) else body
    headers = {
        "Content-Encoding": "snappy",
        "Content-Type": "application/x-protobuf",
        "X-Prometheus-Remote-Write-Version": "0.1.0",
    }
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{port}/api/v1/write", data=data, headers=headers) as response,
    ):
        return response.status, await response.text()


async def read_keyed(
    bootstrap: str, topic: str, count: int, timeout_s: float = 30.0
) -> list[tuple[bytes | None, dict[str, Any]]]:
    """Read a topic from the start until ``count`` records (key, JSON value) or the deadline."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    seen: list[tuple[bytes | None, dict[str, Any]]] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(seen) < count and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                seen.extend((m.key, orjson.loads(m.value)) for m in messages)
        return seen
    finally:
        await consumer.stop()


async def committed_total(bootstrap: str, group: str, topic: str) -> int:
    """The sum of the offsets a consumer group committed on a topic (without joining it)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        total = 0
        for partition in partitions:
            offset = await consumer.committed(TopicPartition(topic, partition))
            total += offset or 0
        return total
    finally:
        await consumer.stop()

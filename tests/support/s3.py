"""A local S3 server (moto) so the embedded broker keeps its data across a restart.

Tansu's memory storage forgets everything when the process stops, which
would turn "the broker restarted" into "the cluster was wiped". With
``s3://`` storage on a moto server, a stopped and restarted broker comes back
with its topics, records and committed offsets, as Apache Kafka does.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from guardian.kafka.embedded import EmbeddedBroker
from guardian.ports import free_port

_BUCKET = "tansu"


@dataclass(frozen=True)
class S3Server:
    """Where the server listens and the environment Tansu needs to use it."""

    endpoint: str

    @property
    def storage_url(self) -> str:
        return f"s3://{_BUCKET}/"

    @property
    def tansu_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "guardian-test",
            "AWS_SECRET_ACCESS_KEY": "guardian-test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }

    def broker(self) -> EmbeddedBroker:
        """An embedded broker that stores its data on this server."""
        return EmbeddedBroker(storage_url=self.storage_url, env=self.tansu_env)


@contextlib.asynccontextmanager
async def s3_server(timeout_s: float = 20.0) -> AsyncIterator[S3Server]:
    """Start ``moto_server`` on a free port with an empty bucket; stop it afterwards."""
    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    process = await asyncio.create_subprocess_exec(
        str(moto),
        "-p",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    server = S3Server(endpoint=f"http://127.0.0.1:{port}")
    try:
        await _create_bucket(server.endpoint, process, timeout_s)
        yield server
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def _create_bucket(
    endpoint: str, process: asyncio.subprocess.Process, timeout_s: float
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"moto_server exited with code {process.returncode}")
            try:
                async with http.put(f"{endpoint}/{_BUCKET}") as response:
                    response.raise_for_status()
                    return
            except (aiohttp.ClientConnectionError, TimeoutError):
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.1)

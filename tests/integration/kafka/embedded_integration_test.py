"""The embedded broker's process: its own session, stopped on every way out, never orphaned."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from guardian.kafka import embedded
from guardian.kafka.embedded import EmbeddedBroker

pytestmark = pytest.mark.kafka


def _running(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting to be collected."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def _gone(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while _running(pid):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_the_broker_leads_its_own_session_so_a_terminal_signal_misses_it() -> None:
    """Ctrl-C signals the terminal's process group; the broker is in a session of its own."""
    async with EmbeddedBroker() as broker:
        pid = broker.pid
        assert pid is not None
        assert os.getsid(pid) == pid
        assert os.getpgid(pid) != os.getpgid(0)
    assert await _gone(pid)


async def test_stop_now_ends_the_broker_without_the_event_loop_and_is_safe_twice() -> None:
    """A forced exit's path: SIGTERM, a short wait, and nothing left running."""
    broker = EmbeddedBroker()
    await broker.start()
    pid = broker.pid
    assert pid is not None
    broker.stop_now()
    broker.stop_now()
    assert not _running(pid)
    await broker.stop()  # the async stop after it only collects the process
    assert broker.pid is None
    await broker.stop()


@pytest.mark.parametrize("how", ["stop", "stop_now"])
async def test_a_broker_deaf_to_sigterm_is_killed_after_the_wait(
    how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frozen broker cannot act on SIGTERM; SIGKILL follows the short wait."""
    monkeypatch.setattr(embedded, "STOP_WAIT_S", 0.3)
    broker = EmbeddedBroker()
    await broker.start()
    pid = broker.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        if how == "stop":
            await broker.stop()
        else:
            broker.stop_now(wait_s=0.3)
    finally:
        if _running(pid):
            os.kill(pid, signal.SIGKILL)
        await broker.stop()
    assert await _gone(pid, timeout_s=1.0)


_STARTER = """
import asyncio, sys
from guardian.kafka.embedded import EmbeddedBroker

async def main():
    broker = EmbeddedBroker()
    await broker.start()
    print(broker.pid, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_broker_whose_parent_is_killed_dies_with_it() -> None:
    """SIGKILL leaves the parent no time to stop it; the kernel does (PR_SET_PDEATHSIG)."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _STARTER], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert parent.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(parent.stdout.readline), timeout=30)
        pid = int(line)
        assert _running(pid)
        parent.kill()
        parent.wait(timeout=10)
        assert await _gone(pid), f"broker {pid} outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)
        if parent.stdout is not None:
            parent.stdout.close()

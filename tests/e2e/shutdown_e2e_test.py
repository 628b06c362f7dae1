"""Ctrl-C in a terminal: ``guardian run`` on the embedded broker drains, exits 0, leaves nothing.

A terminal sends SIGINT to its whole foreground process group. The guardian
is started here in a process group of its own and the whole group is
signalled, as a terminal would; the embedded broker it starts must outlive
the drain and be gone when the guardian has exited.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from guardian.config.settings import Settings
from guardian.ports import free_port
from tests.e2e.support import GUARDIAN, settings_env, wait_exit, wait_ready

pytestmark = pytest.mark.kafka

RULES = Path(__file__).resolve().parents[2] / "rules"


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


def _broker_pid(log_path: Path) -> int:
    """The embedded broker's pid, as the guardian logged it when it started the broker."""
    lines = log_path.read_text().splitlines()
    started = next(json.loads(line) for line in lines if "embedded_broker_started" in line)
    pid: int = started["pid"]
    return pid


@dataclass(frozen=True)
class Guardian:
    """A running ``guardian run`` process and the port of its control plane."""

    process: subprocess.Popen[bytes]
    http_port: int


@contextmanager
def _guardian_in_own_group(log_path: Path, grace_period_s: float = 20.0) -> Iterator[Guardian]:
    """``guardian run`` with no Kafka configured, leading its own process group.

    On the way out whatever is still running, guardian or broker, is killed,
    so a failing test leaves nothing behind either.
    """
    port = free_port()
    settings = Settings(http=f"127.0.0.1:{port}", rules=RULES, grace_period_s=grace_period_s)
    env = settings_env(settings)
    env.pop("GUARDIAN_BOOTSTRAP_SERVERS", None)
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [GUARDIAN, "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, as a shell gives a foreground job
        )
    try:
        yield Guardian(process, port)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        with contextlib.suppress(StopIteration, OSError):
            pid = _broker_pid(log_path)
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


async def test_ctrl_c_to_the_process_group_drains_and_stops_the_embedded_broker(
    tmp_path: Path,
) -> None:
    """SIGINT to the whole group: exit 0, ``drained``, only JSON lines, no broker left."""
    log_path = tmp_path / "g.log"
    with _guardian_in_own_group(log_path) as guardian:
        process = guardian.process
        await wait_ready(guardian.http_port, process)
        broker_pid = _broker_pid(log_path)
        assert _running(broker_pid)
        os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        code = await wait_exit(process)
    log = log_path.read_text()
    assert code == 0, log
    assert "Traceback" not in log
    assert "Unclosed" not in log
    lines = [json.loads(line) for line in log.splitlines()]  # every line is a JSON object
    events = [line["event"] for line in lines]
    assert events.index("stop_requested") < events.index("drained")
    assert all(line["level"] in ("info", "warning") for line in lines), log
    assert await _gone(broker_pid), f"embedded broker {broker_pid} outlived the guardian"


async def test_a_forced_exit_stops_the_embedded_broker_first(tmp_path: Path) -> None:
    """A drain stuck on a frozen broker, then a second SIGINT: exit 130 and no broker left."""
    log_path = tmp_path / "g.log"
    with _guardian_in_own_group(log_path, grace_period_s=30) as guardian:
        process = guardian.process
        await wait_ready(guardian.http_port, process)
        broker_pid = _broker_pid(log_path)
        os.kill(broker_pid, signal.SIGSTOP)  # closing the clients now waits on the broker
        os.killpg(process.pid, signal.SIGINT)
        await asyncio.sleep(1.5)  # past the window in which a repeat is a copy
        assert process.poll() is None, "the drain should still be waiting on the broker"
        os.killpg(process.pid, signal.SIGINT)
        code = await wait_exit(process)
    log = log_path.read_text()
    assert code == 130, log
    assert "forced_exit" in log
    assert await _gone(broker_pid), f"embedded broker {broker_pid} outlived the forced exit"

"""Run the installed ``guardian`` command as a separate process, as an operator would."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
from pydantic import SecretStr

from guardian.config.settings import Settings

GUARDIAN = str(Path(sys.executable).with_name("guardian"))


def settings_env(settings: Settings) -> dict[str, str]:
    """The GUARDIAN_* environment that reproduces these settings in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDIAN_")}
    defaults = Settings.model_construct()
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None or (value == getattr(defaults, name, None) and name != "rules"):
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, list):
            value = json.dumps(value)
        env[f"GUARDIAN_{name.upper()}"] = str(value)
    env["GUARDIAN_LOG_FORMAT"] = "json"
    return env


_LOGS: dict[int, Path] = {}


def log_tail(process: subprocess.Popen[bytes], lines: int = 30) -> str:
    """The last lines the process logged, to explain a failure."""
    path = _LOGS.get(process.pid)
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def guardian_process(
    env: dict[str, str], *args: str, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``guardian run``; on exit make sure it is gone."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [GUARDIAN, "run", *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        _LOGS[process.pid] = log_path
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)


async def wait_ready(port: int, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Poll /readyz until it answers 200; fail early if the process died."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with aiohttp.ClientSession() as http:
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"guardian exited with {process.returncode}:\n{log_tail(process)}"
                )
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("guardian never became ready")
            await asyncio.sleep(0.1)


async def wait_exit(process: subprocess.Popen[bytes], timeout_s: float = 30) -> int:
    """Wait for the process to exit without blocking the event loop."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while process.poll() is None:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("guardian did not exit in time")
        await asyncio.sleep(0.05)
    return process.returncode

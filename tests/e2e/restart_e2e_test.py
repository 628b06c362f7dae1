"""Killed with SIGKILL, a restarted guardian resumes its deploys and never rolls back twice."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson
import pytest

from guardian.config.settings import Settings
from tests.e2e.support import guardian_process, settings_env, wait_exit, wait_ready
from tests.support.events import T0, deploy, traffic
from tests.support.kafka import produce_json, read_for, read_until

pytestmark = pytest.mark.kafka


async def _consumed(port: int, topic: str, at_least: int, timeout_s: float = 30) -> None:
    """Wait until the guardian's metrics say it consumed ``at_least`` records of a topic."""
    needle = f'guardian_events_consumed_total{{topic="{topic}"}} '
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with aiohttp.ClientSession() as http:
        while asyncio.get_running_loop().time() < deadline:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                for line in (await response.text()).splitlines():
                    if line.startswith(needle) and float(line.split()[-1]) >= at_least:
                        return
            await asyncio.sleep(0.1)
    raise AssertionError(f"guardian did not consume {at_least} records of {topic}")


async def test_deploy_started_before_a_crash_is_still_judged_after_restart(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """A deploy seen before SIGKILL is rolled back on bad metrics after restart, exactly once."""
    settings = settings_factory()
    env = settings_env(settings)
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    healthy = traffic(start_ms=T0 - 300_000, seconds=300, every_s=2, error_rate=0.004)
    with guardian_process(env, log_path=tmp_path / "a.log") as first:
        await wait_ready(settings.http_port, first)
        await produce_json(bootstrap, settings.deploy_topic, [deploy(deploy_id="d-crash")])
        await produce_json(bootstrap, settings.metric_topic, healthy)
        await _consumed(settings.http_port, settings.metric_topic, len(healthy))
        await asyncio.sleep(0.5)  # let the batch's commit land
        first.send_signal(signal.SIGKILL)
        await wait_exit(first)

    bad = traffic(seconds=150, error_rate=0.08, latency_ms=400)
    with guardian_process(env, log_path=tmp_path / "b.log") as second:
        await wait_ready(settings.http_port, second)
        await produce_json(bootstrap, settings.metric_topic, bad[:100])
        commands = await read_until(bootstrap, settings.command_topic, bool)
        second.send_signal(signal.SIGKILL)
        await wait_exit(second)

    # A third life sees more bad traffic for the same deploy: no new rollback.
    with guardian_process(env, log_path=tmp_path / "c.log") as third:
        await wait_ready(settings.http_port, third)
        await produce_json(bootstrap, settings.metric_topic, bad[100:])
        await _consumed(settings.http_port, settings.metric_topic, 1)
        commands = await read_for(bootstrap, settings.command_topic, 3.0)
        third.send_signal(signal.SIGTERM)
        assert await wait_exit(third) == 0

    assert commands, "the deploy started before the crash was not judged after restart"
    assert {c["deploy_id"] for c in commands} == {"d-crash"}
    assert len({c["command_id"] for c in commands}) == 1
    assert len(commands) == 1
    rebuilt = [
        entry
        for line in (tmp_path / "b.log").read_bytes().splitlines()
        if line.startswith(b"{") and (entry := orjson.loads(line))["event"] == "state_rebuilt"
    ]
    assert max(entry["restored_services"] for entry in rebuilt) == 1

"""The daemon in-process on a real broker: deploy + bad metrics → one rollback command."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from guardian.config.settings import Settings
from guardian.daemon.app import Daemon
from tests.support.events import T0, deploy, traffic
from tests.support.kafka import produce, produce_json, read_for, read_until

pytestmark = pytest.mark.kafka


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Daemon]:
    """Run a daemon until the block ends, then drain it and surface any crash."""
    daemon = Daemon(settings)
    task = asyncio.create_task(daemon.run())
    try:
        await _wait_ready(daemon, task)
        yield daemon
    finally:
        daemon.request_stop()
        await asyncio.wait_for(task, timeout=20)


async def _wait_ready(daemon: Daemon, task: asyncio.Task[None], timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not daemon.readiness.ready:
        if task.done():
            task.result()
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not ready: {daemon.readiness.failing()}")
        await asyncio.sleep(0.05)


def _commands_for(deploy_id: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda seen: any(r.get("deploy_id") == deploy_id for r in seen)


async def test_bad_canary_gets_exactly_one_rollback_command(
    settings_factory: Callable[..., Settings],
) -> None:
    """8% errors after a canary deploy yield one automatic rollback command with its evidence."""
    settings = settings_factory()
    async with running(settings) as daemon:
        bootstrap = daemon.bootstrap_servers
        assert bootstrap
        await produce_json(bootstrap, settings.deploy_topic, [deploy(deploy_id="d-bad")])
        await produce_json(
            bootstrap,
            settings.metric_topic,
            traffic(seconds=150, error_rate=0.08, cohort="canary"),
        )
        commands = await read_until(bootstrap, settings.command_topic, _commands_for("d-bad"))
        await asyncio.sleep(1.0)  # give a would-be second command time to show up
        commands = await read_for(bootstrap, settings.command_topic, 1.0)
        audits = await read_until(
            bootstrap, settings.audit_topic, lambda seen: any(a.get("command_id") for a in seen)
        )
    rollbacks = [c for c in commands if c["kind"] == "rollback_command"]
    assert len(rollbacks) == 1
    command = rollbacks[0]
    assert command["deploy_id"] == "d-bad"
    assert command["trigger"] == "automatic"
    assert command["procedure"] == "container_version_switch"
    assert command["traffic"] == {
        "action": "set_weight",
        "weight": 0,
        "regions": None,
        "instant": True,
    }
    assert (command["from_version"], command["to_version"]) == ("2.4.1", "2.4.0")
    assert command["evidence"]["observed"] > 0.05
    assert command["command_id"].startswith("rb-")
    assert any(a["command_id"] == command["command_id"] for a in audits)


async def test_healthy_deploy_gets_no_command_and_garbage_is_dead_lettered(
    settings_factory: Callable[..., Settings],
) -> None:
    """A healthy deploy is left alone while garbage around it lands in the DLQ with a reason."""
    settings = settings_factory()
    async with running(settings) as daemon:
        bootstrap = daemon.bootstrap_servers
        assert bootstrap
        await produce_json(bootstrap, settings.deploy_topic, [deploy(deploy_id="d-ok")])
        await produce(
            bootstrap, settings.metric_topic, [(b"checkout", b"\x00garbage"), (b"checkout", b"{}")]
        )
        await produce_json(bootstrap, settings.metric_topic, traffic(seconds=120, error_rate=0.004))
        letters = await read_until(bootstrap, settings.dlq_topic, lambda seen: len(seen) >= 2)
        port = daemon.http_port
        expected = f'guardian_events_consumed_total{{topic="{settings.metric_topic}"}} 122.0'
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                    metrics_text = await response.text()
                if expected in metrics_text:
                    break
                await asyncio.sleep(0.1)
            async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                assert response.status == 200
                assert (await response.json())["ready"] is True
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
        commands = await read_for(bootstrap, settings.command_topic, 1.0)
    assert expected in metrics_text
    assert commands == []
    assert {letter["source"]["offset"] for letter in letters} == {0, 1}
    assert all(letter["source"]["topic"] == settings.metric_topic for letter in letters)
    assert "not valid JSON" in letters[0]["reason"]


async def test_invalid_rules_refuse_to_start(
    settings_factory: Callable[..., Settings], tmp_path: Any
) -> None:
    """The daemon will not start on rules it cannot load."""
    from guardian.errors import ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: x\n    action: explode\n")
    with pytest.raises(ConfigError):
        await Daemon(settings_factory(rules=bad)).run()


def test_events_start_at_t0() -> None:
    """The shared builders stamp events from the fixed T0 (guards the helpers themselves)."""
    assert traffic(seconds=2)[1]["timestamp"] == T0 + 1000

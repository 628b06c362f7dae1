"""``guardian`` as a separate process, driven through Kafka like production."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import orjson
import pytest

from guardian.config.settings import Settings
from guardian.kafka.embedded import EmbeddedBroker
from guardian.ports import free_port
from tests.e2e.support import GUARDIAN, guardian_process, settings_env, wait_exit, wait_ready
from tests.support.events import deploy, traffic
from tests.support.kafka import produce, produce_json, read_until
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.kafka


async def test_bad_release_is_rolled_back_through_kafka(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """A deploy with 8% errors produces its rollback command; SIGTERM drains and exits 0."""
    settings = settings_factory()
    with guardian_process(settings_env(settings), log_path=tmp_path / "g.log") as process:
        await wait_ready(settings.http_port, process)
        bootstrap = settings.bootstrap_servers
        assert bootstrap
        await produce_json(
            bootstrap,
            settings.deploy_topic,
            [deploy(deploy_id="d-e2e", strategy="rolling", component="configuration")],
        )
        await produce_json(bootstrap, settings.metric_topic, traffic(seconds=150, error_rate=0.08))
        commands = await read_until(bootstrap, settings.command_topic, bool, timeout_s=30)
        process.send_signal(signal.SIGTERM)
        assert await wait_exit(process) == 0
    command = commands[0]
    assert command["kind"] == "rollback_command"
    assert command["deploy_id"] == "d-e2e"
    assert command["procedure"] == "version_rollback"
    assert command["traffic"]["action"] == "redeploy_previous"
    assert command["to_version"] == "2.4.0"
    assert command["trigger"] == "automatic"
    assert command["rule"]
    assert command["reason"]
    log = (tmp_path / "g.log").read_bytes().splitlines()
    events = [orjson.loads(line)["event"] for line in log if line.startswith(b"{")]
    assert "decision" in events
    assert "drained" in events


async def test_garbage_is_dead_lettered_while_valid_events_are_judged(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Garbage lands in guardian.dlq with its origin while a bad deploy is still rolled back."""
    settings = settings_factory()
    with guardian_process(settings_env(settings), log_path=tmp_path / "g.log") as process:
        await wait_ready(settings.http_port, process)
        bootstrap = settings.bootstrap_servers
        assert bootstrap
        await produce_json(bootstrap, settings.deploy_topic, [deploy(deploy_id="d-mixed")])
        bad = traffic(seconds=150, error_rate=0.08, cohort="canary")
        records: list[tuple[bytes | None, bytes]] = [(b"checkout", orjson.dumps(e)) for e in bad]
        records.insert(10, (b"checkout", b"\x89PNG garbage"))
        records.insert(20, (b"checkout", b'{"kind": "metric", "service": 7}'))
        await produce(bootstrap, settings.metric_topic, records)
        letters = await read_until(bootstrap, settings.dlq_topic, lambda seen: len(seen) >= 2)
        commands = await read_until(bootstrap, settings.command_topic, bool)
        process.send_signal(signal.SIGTERM)
        assert await wait_exit(process) == 0
    assert len(letters) == 2
    assert {letter["source"]["offset"] for letter in letters} == {10, 20}
    assert "$.service" in letters[1]["reason"] or "$.service" in letters[0]["reason"]
    assert commands[0]["deploy_id"] == "d-mixed"


async def test_embedded_broker_is_started_when_no_kafka_is_configured(tmp_path: Path) -> None:
    """With no bootstrap servers, ``guardian run`` starts the embedded broker and says so."""
    port = free_port()
    env = settings_env(Settings(http=f"127.0.0.1:{port}", rules=Path("rules").resolve()))
    env.pop("GUARDIAN_BOOTSTRAP_SERVERS", None)
    with guardian_process(env, log_path=tmp_path / "g.log") as process:
        await wait_ready(port, process)
        process.send_signal(signal.SIGINT)
        assert await wait_exit(process) == 0
    log = (tmp_path / "g.log").read_text()
    assert "embedded_broker_started" in log
    started = next(json.loads(line) for line in log.splitlines() if "guardian_started" in line)
    assert started["fetch_max_wait_ms"] == 10  # that broker answers only when the wait ends


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GUARDIAN_HTTP": "not-an-address"}, "http"),
        ({"GUARDIAN_RULES": "/nonexistent/rules"}, "/nonexistent/rules"),
    ],
)
def test_bad_configuration_exits_2_with_one_clear_line(
    env: dict[str, str], message: str, tmp_path: Path
) -> None:
    """A configuration mistake exits with code 2 and a one-line explanation, no traceback."""
    full_env = settings_env(Settings())
    full_env.update(env)
    result = subprocess.run(
        [GUARDIAN, "run"], env=full_env, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert message in stderr
    assert "Traceback" not in stderr


async def test_unreachable_broker_exits_1_after_the_retry_budget(tmp_path: Path) -> None:
    """A broker that never answers ends the daemon with exit 1 and a clear message."""
    env = settings_env(Settings(http=f"127.0.0.1:{free_port()}"))
    env["GUARDIAN_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{free_port()}"
    env["GUARDIAN_CONNECT_TIMEOUT_S"] = "2"
    env["GUARDIAN_RULES"] = str(Path("rules").resolve())
    with guardian_process(env, log_path=tmp_path / "g.log") as process:
        assert await wait_exit(process, timeout_s=60) == 1
    assert "unreachable" in (tmp_path / "g.log").read_text()


def test_version_and_help() -> None:
    """``guardian --version`` and ``--help`` work without any configuration."""
    version = subprocess.run([GUARDIAN, "--version"], capture_output=True, check=True)
    assert version.stdout.decode().startswith("guardian ")
    helptext = subprocess.run([GUARDIAN, "--help"], capture_output=True, check=True)
    assert "run" in helptext.stdout.decode()


async def test_a_stop_signal_delivered_twice_still_drains(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """``timeout`` and some shells signal the process and its group: one request, exit 0."""
    settings = settings_factory()
    with guardian_process(settings_env(settings), log_path=tmp_path / "g.log") as process:
        await wait_ready(settings.http_port, process)
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.1)  # apart, so the kernel cannot merge them into one
        process.send_signal(signal.SIGTERM)
        assert await wait_exit(process) == 0
    events = _log_events(tmp_path / "g.log")
    assert "drained" in events
    assert "forced_exit" not in events


async def test_a_second_stop_request_during_a_stuck_drain_forces_exit(
    settings_factory: Callable[..., Settings], mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A dead letter the frozen broker cannot take holds the drain; a second SIGTERM exits 130.

    The record arrives over MQTT, so it reaches the daemon although its Kafka
    broker is frozen; its dead letter then has nowhere to go, and the drain
    waits for it. (An idle daemon, with nothing to deliver, rightly drains at
    once, broker or not.)
    """
    async with EmbeddedBroker() as broker:
        topic = f"guardian-test/{free_port()}"
        settings = settings_factory(
            bootstrap_servers=broker.bootstrap_servers,
            grace_period_s=30,
            mqtt_url=mosquitto.url,
            mqtt_topics=[f"{topic}/#"],
        )
        env = settings_env(settings)
        with guardian_process(env, log_path=tmp_path / "g.log") as process:
            await wait_ready(settings.http_port, process)
            assert broker.pid is not None
            os.kill(broker.pid, signal.SIGSTOP)
            try:
                async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
                    await client.publish(f"{topic}/junk", b"\x00 not json", qos=1)
                await asyncio.sleep(0.5)  # received, judged, its dead letter waiting
                process.send_signal(signal.SIGTERM)
                await asyncio.sleep(2.0)  # past the window in which a repeat is a copy
                assert process.poll() is None, "the drain should still be waiting on the broker"
                process.send_signal(signal.SIGTERM)
                assert await wait_exit(process) == 130
            finally:
                os.kill(broker.pid, signal.SIGCONT)
    assert "forced_exit" in _log_events(tmp_path / "g.log")


def _log_events(path: Path) -> list[str]:
    lines = path.read_bytes().splitlines()
    return [orjson.loads(line)["event"] for line in lines if line.startswith(b"{")]

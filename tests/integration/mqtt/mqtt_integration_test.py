"""The MQTT source on a real Mosquitto, judged by the real pipeline into a real Kafka broker."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest

from guardian.config.settings import Settings
from guardian.daemon.health import Readiness
from guardian.daemon.pipeline import Pipeline
from guardian.delivery import Deadline
from guardian.engine import Engine, load_rules
from guardian.errors import SinkError
from guardian.kafka.admin import ensure_topics
from guardian.kafka.sink import KafkaSink
from guardian.kafka.source import RawRecord
from guardian.metrics import GuardianMetrics
from guardian.mqtt.loop import run_mqtt
from guardian.mqtt.source import MqttOptions, MqttSource
from tests.support.events import deploy, traffic
from tests.support.kafka import read_until
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.kafka

FAST = MqttOptions(backoff_initial_s=0.05, backoff_max_s=0.3, connect_timeout_s=2)


async def _until(condition: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _publish(port: int, topic: str, payloads: Iterable[bytes]) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as client:
        for payload in payloads:
            await client.publish(topic, payload, qos=1)


def _json(events: Iterable[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(e) for e in events]


@contextlib.asynccontextmanager
async def _guardian(
    settings: Settings, readiness: Readiness, options: MqttOptions = FAST
) -> AsyncIterator[MqttSource]:
    """MqttSource + Pipeline + KafkaSink running ``run_mqtt`` until the block ends."""
    assert settings.bootstrap_servers
    await ensure_topics(settings, settings.bootstrap_servers)
    engine = Engine(load_rules(settings.rules))
    stop = asyncio.Event()
    async with (
        KafkaSink(settings, settings.bootstrap_servers) as sink,
        MqttSource(settings, readiness, options) as source,
    ):
        pipeline = Pipeline(
            engine,
            sink,
            {
                "command": settings.command_topic,
                "audit": settings.audit_topic,
                "notification": settings.notification_topic,
                "dlq": settings.dlq_topic,
                "state": settings.state_topic,
            },
            GuardianMetrics(),
        )
        task = asyncio.create_task(run_mqtt(source, pipeline, stop, readiness))
        try:
            await _until(lambda: source.connected, "the MQTT subscription")
            yield source
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=10)


def _command_for(deploy_id: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda seen: any(r.get("deploy_id") == deploy_id for r in seen)


async def test_events_over_mqtt_are_judged_and_bad_payloads_dead_lettered(
    settings_factory: Callable[..., Settings], mosquitto: Mosquitto
) -> None:
    """On a real Mosquitto a bad canary gets a rollback command and garbage is dead-lettered."""
    prefix = f"guardian-test/{uuid.uuid4().hex[:10]}"
    settings = settings_factory(mqtt_url=mosquitto.url, mqtt_topics=[f"{prefix}/#"])
    readiness = Readiness()
    async with _guardian(settings, readiness):
        assert readiness.conditions["mqtt_connected"] is True
        await _publish(mosquitto.port, f"{prefix}/deploys", _json([deploy(deploy_id="d-mqtt")]))
        await _publish(mosquitto.port, f"{prefix}/junk", [b"\x00not json", b"{}"])
        await _publish(
            mosquitto.port,
            f"{prefix}/metrics",
            _json(traffic(seconds=150, error_rate=0.08, cohort="canary")),
        )
        bootstrap = settings.bootstrap_servers
        assert bootstrap
        commands = await read_until(bootstrap, settings.command_topic, _command_for("d-mqtt"))
        letters = await read_until(bootstrap, settings.dlq_topic, lambda seen: len(seen) >= 2)
    rollbacks = [c for c in commands if c["kind"] == "rollback_command"]
    assert [c["deploy_id"] for c in rollbacks] == ["d-mqtt"]
    assert len(letters) == 2
    for letter in letters:
        assert letter["source"]["transport"] == "mqtt"
        assert letter["source"]["topic"] == f"{prefix}/junk"
        assert letter["source"]["partition"] is None
    assert "not valid JSON" in letters[0]["reason"]
    assert readiness.conditions["mqtt_connected"] is False  # the source closed


async def test_broker_restart_is_survived_and_later_events_are_judged(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """A killed Mosquitto turns readiness red; once restarted the source reconnects and judges."""
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        settings = settings_factory(mqtt_url=broker.url, mqtt_topics=["guardian/#"])
        readiness = Readiness()
        async with _guardian(settings, readiness) as source:
            await _publish(broker.port, "guardian/deploys", _json([deploy(deploy_id="d-restart")]))
            early = traffic(seconds=150, error_rate=0.08, cohort="canary")
            await _publish(broker.port, "guardian/metrics", _json(early[:10]))

            broker.kill()
            await _until(lambda: not readiness.conditions["mqtt_connected"], "readiness to drop")
            assert not source.connected
            await asyncio.sleep(0.5)  # a few reconnect attempts fail while it is down

            await asyncio.to_thread(broker.start)
            await _until(lambda: readiness.conditions["mqtt_connected"], "the reconnection")
            assert source.connects == 2
            await _publish(broker.port, "guardian/metrics", _json(early[10:]))
            bootstrap = settings.bootstrap_servers
            assert bootstrap
            commands = await read_until(
                bootstrap, settings.command_topic, _command_for("d-restart")
            )
    finally:
        broker.kill()
    assert [c["deploy_id"] for c in commands if c["kind"] == "rollback_command"] == ["d-restart"]


async def test_refused_login_stops_the_source_with_a_clear_error(tmp_path: Path) -> None:
    """A broker that rejects the credentials is a non-retriable SourceError, not a retry loop."""
    broker = Mosquitto(tmp_path)
    broker.config.write_text(
        broker.config_text(f"allow_anonymous false\npassword_file {tmp_path / 'empty'}\n"),
        encoding="utf-8",
    )
    (tmp_path / "empty").write_text("", encoding="utf-8")
    broker.start()
    try:
        settings = Settings(mqtt_url=f"mqtt://someone:wrong@127.0.0.1:{broker.port}")
        async with MqttSource(settings, Readiness(), FAST) as source:
            error: Exception | None = None
            deadline = asyncio.get_running_loop().time() + 10
            while error is None and asyncio.get_running_loop().time() < deadline:
                try:
                    await source.next_batch(0.05)
                except Exception as exc:  # noqa: BLE001 - the test inspects whatever comes out
                    error = exc
    finally:
        broker.kill()
    assert error is not None
    assert "refused the connection" in str(error)
    assert getattr(error, "retriable", None) is False


async def test_unacknowledged_messages_are_redelivered_to_a_persistent_session(
    tmp_path: Path,
) -> None:
    """With a fixed client id an unacked message is re-delivered after a restart, acked ones not."""
    broker = Mosquitto(tmp_path)
    broker.start()
    options = MqttOptions(client_id=f"guardian-test-{uuid.uuid4().hex[:8]}", connect_timeout_s=2)
    settings = Settings(mqtt_url=broker.url, mqtt_topics=["guardian/#"])
    try:
        async with MqttSource(settings, Readiness(), options) as first:
            await _until(lambda: first.connected, "the first connection")
            await _publish(broker.port, "guardian/metrics", [b"one"])
            batch = await first.next_batch(5)
            assert [r.value for r in batch] == [b"one"]
            # stopped without ack: as if the guardian crashed before writing the outputs
        async with MqttSource(settings, Readiness(), options) as second:
            again = await second.next_batch(5)
            assert [(r.value, r.topic, r.partition) for r in again] == [
                (b"one", "guardian/metrics", -1)
            ]
            assert await second.ack(again) == 1
        async with MqttSource(settings, Readiness(), options) as third:
            await _until(lambda: third.connected, "the third connection")
            assert await third.next_batch(0.5) == []
    finally:
        broker.kill()


class _AwaySink:
    """A pipeline whose outputs never reach a broker (faked at the loop's ``BatchJudge``)."""

    def __init__(self) -> None:
        self.attempts = 0

    def judge(self, records: Sequence[RawRecord], transport: str = "kafka") -> int:
        return len(records)

    async def deliver(self, result: int) -> None:
        self.attempts += 1
        raise SinkError("broker away (test)")


async def test_a_drain_stops_retrying_at_the_daemons_deadline_and_leaves_the_batch_unacked(
    tmp_path: Path,
) -> None:
    """Past the drain deadline it is given, the loop ends (non-retriable), the message unacked."""
    broker = Mosquitto(tmp_path)
    broker.start()
    options = MqttOptions(client_id=f"guardian-test-{uuid.uuid4().hex[:8]}", connect_timeout_s=2)
    settings = Settings(mqtt_url=broker.url, mqtt_topics=["guardian/#"], grace_period_s=60)
    stop = asyncio.Event()
    drain: list[Deadline] = []
    pipeline = _AwaySink()
    try:
        async with MqttSource(settings, Readiness(), options) as source:
            await _until(lambda: source.connected, "the subscription")
            task = asyncio.create_task(
                run_mqtt(source, pipeline, stop, drain_deadline=lambda: drain[0] if drain else None)
            )
            await _publish(broker.port, "guardian/metrics", [b"held"])
            await _until(lambda: pipeline.attempts >= 2, "delivery retries")
            started = time.monotonic()
            drain.append(Deadline(started + 0.5, "the test's grace period is spent"))
            stop.set()
            with pytest.raises(SinkError, match="test's grace period") as caught:
                await asyncio.wait_for(task, 10)
            assert time.monotonic() - started < 3  # not the retry loop's own pace
        assert not caught.value.retriable
        async with MqttSource(settings, Readiness(), options) as again:
            assert [r.value for r in await again.next_batch(5)] == [b"held"]
    finally:
        broker.kill()

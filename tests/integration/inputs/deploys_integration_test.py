"""Deploy events from CD tools in a running daemon on a real broker: CDEvents on Kafka, the webhook.

Two services release 2.4.1 over 2.4.0 (which the guardian saw in their
metrics): ``checkout`` goes bad (30% errors), ``cart`` stays healthy. The
deploy arrives only as a CDEvent on ``deploy.events`` (binary mode built by
the CloudEvents SDK, structured mode) or only through ``POST /v1/events``
(the README's recipes); each must end in exactly one rollback command, for
``checkout``, to 2.4.0, and an ``incident.detected`` CDEvent, and none for
``cart``. The CDEvents ``service.rolledback`` then resolves the incident.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from guardian.config.settings import Settings
from guardian.wire.cdevents import decode_record
from tests.integration.inputs.recipes import DEPLOYER, DEPLOYER_TOKEN, argo_cd_body, github_step
from tests.integration.inputs.support import running
from tests.support.cdevents import Mode, cdevent, kafka_form
from tests.support.events import traffic
from tests.support.kafka import produce_json, read_for, read_until
from tests.support.manual import write_tokens

pytestmark = pytest.mark.kafka

BAD, HEALTHY = 0.3, 0.002


def _metrics(service: str, version: str, start_ms: int, seconds: int, errors: float) -> list[Any]:
    events = traffic(service=service, start_ms=start_ms, seconds=seconds, error_rate=errors)
    return [{**event, "version": version} for event in events]


async def _produce_with_headers(
    bootstrap: str, topic: str, records: list[tuple[bytes, list[tuple[str, bytes]], bytes]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, headers, value in records:
            await (await producer.send(topic, value=value, key=key, headers=headers))
    finally:
        await producer.stop()


def _settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    tokens = write_tokens(tmp_path / "tokens.yaml", DEPLOYER)
    return settings_factory(tokens_file=tokens)


async def _release(bootstrap: str, settings: Settings, deploy_ms: int) -> None:
    """What the services ran before, then the new version's traffic."""
    before = [
        e
        for service in ("checkout", "cart")
        for e in _metrics(service, "2.4.0", deploy_ms - 60_000, 60, HEALTHY)
    ]
    after = [
        e
        for service, errors in (("checkout", BAD), ("cart", HEALTHY))
        for e in _metrics(service, "2.4.1", deploy_ms + 1000, 90, errors)
    ]
    await produce_json(bootstrap, settings.metric_topic, before + after)


def _check_command(commands: list[dict[str, Any]], deploy_id: str | None = None) -> None:
    assert {c["service"] for c in commands} == {"checkout"}, commands
    assert len({c["command_id"] for c in commands}) == 1
    command = commands[0]
    assert (command["from_version"], command["to_version"]) == ("2.4.1", "2.4.0")
    assert command["rule"] in {"error-rate-critical", "availability-drop"}  # both hold at once
    assert command["traffic"]["action"] == "redeploy_previous"  # rolling: no strategy given
    if deploy_id is not None:
        assert command["deploy_id"] == deploy_id


@pytest.mark.parametrize("mode", ["binary", "structured"])
async def test_cdevents_on_kafka_roll_back_the_bad_release_and_resolve_its_incident(
    settings_factory: Callable[..., Settings], tmp_path: Path, mode: Mode
) -> None:
    """service.upgraded → one command for the bad release; service.rolledback → resolved."""
    settings = _settings(settings_factory, tmp_path)
    assert settings.incident_topic
    deploy_ms = time.time_ns() // 1_000_000 - 120_000
    async with running(settings) as daemon:
        bootstrap = daemon.bootstrap_servers
        assert bootstrap
        upgrades = []
        for service in ("checkout", "cart"):
            document = cdevent(service=service, at_ms=deploy_ms, event_id=f"up-{service}")
            headers, value = kafka_form(document, mode)
            upgrades.append((service.encode(), headers, value))
        await _produce_with_headers(bootstrap, settings.deploy_topic, upgrades)
        await _release(bootstrap, settings, deploy_ms)
        commands = await read_until(bootstrap, settings.command_topic, bool, timeout_s=30)
        detected = await read_until(bootstrap, settings.incident_topic, bool, timeout_s=10)
        # The executor rolled checkout back to 2.4.0 and its CD tool says so.
        rolled = cdevent(
            "rolledback", version="2.4.0", at_ms=deploy_ms + 95_000, event_id="rb-checkout"
        )
        headers, value = kafka_form(rolled, mode)
        await _produce_with_headers(
            bootstrap, settings.deploy_topic, [(b"checkout", headers, value)]
        )
        incidents = await read_until(
            bootstrap, settings.incident_topic, lambda seen: len(seen) >= 2, timeout_s=20
        )
        commands = await read_for(bootstrap, settings.command_topic, 1.0)
        letters = await read_for(bootstrap, settings.dlq_topic, 0.5)
    assert letters == []
    expected_id = decode_record(upgrades[0][2], upgrades[0][1]).deploy_id  # type: ignore[union-attr]
    _check_command(commands, expected_id)
    assert [i["type"] for i in detected] == ["dev.cdevents.incident.detected.0.1.0"]
    kinds = [i["type"].split(".")[3] for i in incidents]
    assert kinds == ["detected", "resolved"], incidents
    detected_event, resolved_event = incidents
    assert detected_event["subject"] == resolved_event["subject"]
    custom = detected_event["data"]["customData"]
    assert (custom["command_id"], custom["deploy_id"]) == (
        commands[0]["command_id"],
        expected_id,
    )
    assert resolved_event["data"]["customData"]["status"] == "rolled_back"


@pytest.mark.parametrize("recipe", ["github_actions", "argo_cd"])
async def test_the_webhook_recipes_roll_back_the_bad_release_only(
    settings_factory: Callable[..., Settings], tmp_path: Path, recipe: str
) -> None:
    """The README's GitHub Actions step (curl) or Argo CD template body, sent to /v1/events."""
    settings = _settings(settings_factory, tmp_path)
    deploy_ms = time.time_ns() // 1_000_000 - 1000
    async with running(settings) as daemon:
        bootstrap, port = daemon.bootstrap_servers, daemon.http_port
        assert bootstrap
        assert port
        answers = []
        for service in ("checkout", "cart"):
            if recipe == "github_actions":
                answers.append(await github_step(port, service, "2.4.1", DEPLOYER_TOKEN))
            else:
                answers.append(
                    await argo_cd_body(port, service, "2.4.1", deploy_ms, DEPLOYER_TOKEN)
                )
        await _release(bootstrap, settings, deploy_ms)
        commands = await read_until(bootstrap, settings.command_topic, bool, timeout_s=30)
        commands = await read_for(bootstrap, settings.command_topic, 1.0)
        deploys = await read_for(bootstrap, settings.deploy_topic, 0.5)
    assert [status for status, _ in answers] == [202, 202], answers
    accepted = [orjson.loads(body) for _, body in answers]
    assert [a["service"] for a in accepted] == ["checkout", "cart"]
    # What the webhook wrote is v1, keyed for the owner of the service.
    assert sorted((d["kind"], d["service"]) for d in deploys) == [
        ("deploy", "cart"),
        ("deploy", "checkout"),
    ]
    _check_command(commands, accepted[0]["deploy_id"])

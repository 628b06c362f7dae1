"""Deploy inputs end to end: a CDEvent on Kafka, or the webhook, into ``guardian run``.

Two services release 2.4.1 over 2.4.0 (which the guardian saw in their
metrics): ``checkout`` goes bad (30% errors), ``cart`` stays healthy. The
deploy is announced only as a CDEvents ``service.upgraded`` on the deploy
topic (CloudEvents structured mode, built by the CloudEvents SDK), or only
by the README's GitHub Actions step calling ``POST /v1/events`` with curl.
Each must end in one rollback command, for ``checkout``, to 2.4.0, and none
for ``cart``; the installed command then drains on SIGTERM and exits 0.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from guardian.config.settings import Settings
from tests.e2e.support import guardian_process, log_tail, settings_env, wait_exit, wait_ready
from tests.integration.inputs.recipes import DEPLOYER, DEPLOYER_TOKEN, github_step
from tests.support.cdevents import cdevent, kafka_form
from tests.support.events import traffic
from tests.support.kafka import produce_json, read_for, read_until
from tests.support.manual import write_tokens

pytestmark = pytest.mark.kafka

BAD, HEALTHY = 0.3, 0.002
SERVICES = ("checkout", "cart")


async def _release(bootstrap: str, topic: str, deploy_ms: int) -> None:
    """A minute of 2.4.0 before the deploy, then 90 s of 2.4.1 (bad for checkout only)."""

    def metrics(service: str, version: str, start_ms: int, seconds: int, errors: float) -> Any:
        events = traffic(service=service, start_ms=start_ms, seconds=seconds, error_rate=errors)
        return [{**event, "version": version} for event in events]

    before = [e for s in SERVICES for e in metrics(s, "2.4.0", deploy_ms - 60_000, 60, HEALTHY)]
    after = [
        e
        for service, errors in (("checkout", BAD), ("cart", HEALTHY))
        for e in metrics(service, "2.4.1", deploy_ms + 1000, 90, errors)
    ]
    await produce_json(bootstrap, topic, before + after)


def _check(commands: list[dict[str, Any]], process: Any) -> dict[str, Any]:
    assert commands, f"no command\n{log_tail(process)}"
    assert {c["service"] for c in commands} == {"checkout"}, commands
    assert len({c["command_id"] for c in commands}) == 1
    command = commands[0]
    assert (command["from_version"], command["to_version"]) == ("2.4.1", "2.4.0")
    assert command["trigger"] == "automatic"
    return command


async def test_a_cdevent_on_the_deploy_topic_rolls_back_the_bad_release_only(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """service.upgraded in structured mode → one command for checkout, none for cart."""
    settings = settings_factory()
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    deploy_ms = time.time_ns() // 1_000_000 - 120_000
    with guardian_process(settings_env(settings), log_path=tmp_path / "g.log") as process:
        await wait_ready(settings.http_port, process)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for service in SERVICES:
                document = cdevent(service=service, at_ms=deploy_ms, event_id=f"up-{service}")
                headers, value = kafka_form(document, "structured")
                sent = await producer.send(
                    settings.deploy_topic, value=value, key=service.encode(), headers=headers
                )
                await sent
        finally:
            await producer.stop()
        await _release(bootstrap, settings.metric_topic, deploy_ms)
        commands = await read_until(bootstrap, settings.command_topic, bool, timeout_s=60)
        commands = await read_for(bootstrap, settings.command_topic, 2.0)
        letters = await read_for(bootstrap, settings.dlq_topic, 0.5)
        process.send_signal(signal.SIGTERM)
        assert await wait_exit(process) == 0
    command = _check(commands, process)
    assert command["deploy_id"].startswith("cde-")  # derived from the CDEvent's source and id
    assert letters == []


async def test_the_github_actions_webhook_step_rolls_back_the_bad_release_only(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """The README's step (bash, real curl) posts to /v1/events; 202; one command, for checkout."""
    settings = settings_factory(tokens_file=write_tokens(tmp_path / "tokens.yaml", DEPLOYER))
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    with guardian_process(settings_env(settings), log_path=tmp_path / "g.log") as process:
        await wait_ready(settings.http_port, process)
        deploy_ms = time.time_ns() // 1_000_000 - 1000
        answers = [
            await github_step(settings.http_port, service, "2.4.1", DEPLOYER_TOKEN)
            for service in SERVICES
        ]
        await _release(bootstrap, settings.metric_topic, deploy_ms)
        commands = await read_until(bootstrap, settings.command_topic, bool, timeout_s=60)
        commands = await read_for(bootstrap, settings.command_topic, 2.0)
        process.send_signal(signal.SIGTERM)
        assert await wait_exit(process) == 0
    assert [status for status, _ in answers] == [202, 202], answers
    accepted = [orjson.loads(body) for _, body in answers]
    assert [a["service"] for a in accepted] == list(SERVICES)
    command = _check(commands, process)
    assert command["deploy_id"] == accepted[0]["deploy_id"]

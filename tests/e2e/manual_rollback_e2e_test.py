"""A manual rollback through ``guardian run``: request, second-person approval, signed command."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from guardian.config.settings import Settings
from guardian.wire.signing import verify
from tests.e2e.support import guardian_process, settings_env, wait_exit, wait_ready
from tests.support.events import deploy
from tests.support.kafka import produce_json, read_until
from tests.support.manual import auth, write_tokens
from tests.support.slack import FakeSlack
from tests.support.smtp import SmtpServer
from tests.support.waiting import eventually

pytestmark = pytest.mark.kafka

SUBSCRIPTIONS = """\
subscriptions:
  - name: checkout-oncall
    match: {service: "checkout*"}
    slack: ["#checkout-oncall"]
    email: ["oncall@checkout.example"]
"""


async def test_manual_rollback_with_second_person_approval(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Request → self-approval refused → approval by another SRE → signed manual command."""
    slack = FakeSlack()
    await slack.start()
    smtp = SmtpServer(tmp_path)
    smtp.start()
    subscriptions = tmp_path / "subscriptions.yaml"
    subscriptions.write_text(SUBSCRIPTIONS)
    settings = settings_factory(
        tokens_file=write_tokens(tmp_path / "tokens.yaml"),
        subscriptions=subscriptions,
        slack_token=slack.token,
        slack_base_url=slack.base_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_username=smtp.username,
        smtp_password=smtp.password,
        smtp_starttls=True,
        smtp_ca_file=smtp.ca_file,
        signing_key="manual-key",
        notify_backoff_initial_s=0.1,
    )
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    base = f"http://127.0.0.1:{settings.http_port}/v1/rollbacks"
    body = {"service": "checkout", "environment": "production", "reason": "customers report 500s"}
    try:
        with guardian_process(settings_env(settings), log_path=tmp_path / "g.log") as process:
            await wait_ready(settings.http_port, process)
            async with aiohttp.ClientSession() as http:
                async with http.post(base, json=body, headers=auth("alice")) as response:
                    assert response.status == 409  # nothing deployed yet: nothing to roll back
                    assert "application/problem+json" in response.headers["Content-Type"]
                await produce_json(bootstrap, settings.deploy_topic, [deploy(deploy_id="d-man")])
                created: dict[str, Any] = {}
                for _ in range(100):
                    async with http.post(base, json=body, headers=auth("alice")) as response:
                        if response.status == 201:
                            created = await response.json()
                            break
                    await asyncio.sleep(0.1)
                assert created["status"] == "pending"
                request_url = f"{base}/{created['id']}"
                async with http.post(base, json=body) as response:
                    assert response.status == 401
                async with http.post(base, json=body, headers=auth("carol")) as response:
                    assert response.status == 403  # no SRE or DevOps Lead role
                async with http.post(
                    f"{request_url}/approve", json={}, headers=auth("alice")
                ) as response:
                    assert response.status == 403  # the requester may not approve
                async with http.post(
                    f"{request_url}/approve", json={}, headers=auth("bob")
                ) as response:
                    assert response.status == 200
                    assert (await response.json())["status"] == "approved"
                async with http.post(
                    f"{request_url}/deny", json={"reason": "late"}, headers=auth("bob")
                ) as response:
                    assert response.status == 409  # already decided
                async with http.get(request_url, headers=auth("carol")) as response:
                    assert response.status in (200, 403)
            commands = await read_until(bootstrap, settings.command_topic, bool)
            audits = await read_until(
                bootstrap,
                settings.audit_topic,
                lambda seen: sum(1 for a in seen if a.get("actor") in ("alice", "bob")) >= 2,
            )
            await eventually(
                lambda: (
                    bool(slack.in_channel("#checkout-oncall"))
                    and bool(smtp.to("oncall@checkout.example"))
                )
            )
            process.send_signal(signal.SIGTERM)
            assert await wait_exit(process) == 0
    finally:
        await slack.stop()
        smtp.stop()

    command = commands[0]
    assert command["trigger"] == "manual"
    assert command["deploy_id"] == "d-man"
    assert (command["requested_by"], command["approved_by"]) == ("alice", "bob")
    assert command["reason"] == "customers report 500s"
    assert command["traffic"]["action"] == "set_weight"
    assert verify(command, b"manual-key")
    assert {a["actor"] for a in audits} >= {"alice", "bob"}

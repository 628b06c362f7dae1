"""Manual rollbacks on a real broker: approval flow, signed command, audit, restart survival."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from guardian.api import ManualRollbacks
from guardian.config.settings import Settings
from guardian.kafka.sink import KafkaSink
from guardian.metrics import GuardianMetrics
from guardian.wire.signing import verify
from tests.support.kafka import read_until
from tests.support.manual import Clock, Lookup, auth, make_deploy, write_tokens

pytestmark = pytest.mark.kafka

BODY = {"service": "checkout", "environment": "production", "reason": "error spike"}
Client = TestClient[web.Request, web.Application]


@contextlib.asynccontextmanager
async def running(
    settings: Settings, clock: Clock | None = None
) -> AsyncIterator[tuple[Client, ManualRollbacks]]:
    """A started ManualRollbacks with its background loop and an HTTP client on its routes."""
    bootstrap = settings.bootstrap_servers
    assert bootstrap is not None
    metrics = GuardianMetrics()
    async with (
        KafkaSink(settings, bootstrap) as sink,
        ManualRollbacks(
            settings,
            bootstrap,
            sink,
            Lookup(make_deploy("d-1")),
            metrics,
            clock_ms=clock or Clock(),
        ) as manual,
    ):
        app = web.Application()
        manual.install(app)
        task = asyncio.create_task(manual.run())
        try:
            async with TestClient(TestServer(app)) as client:
                yield client, manual
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await manual.stop()  # idempotent: the context exit stops it again


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    """Settings with a tokens file and a signing key on this test's topics."""
    return settings_factory(
        tokens_file=write_tokens(tmp_path / "tokens.yaml"), signing_key="sign-me"
    )


async def test_request_self_approval_refused_second_person_emits_signed_command(
    settings: Settings,
) -> None:
    """alice requests, cannot approve herself, bob approves: a signed command is on the topic."""
    async with running(settings) as (client, manual):
        resp = await client.post("/v1/rollbacks", json=BODY, headers=auth("alice"))
        assert resp.status == 201
        rid = (await resp.json())["id"]
        own = await client.post(f"/v1/rollbacks/{rid}/approve", headers=auth("alice"))
        assert own.status == 403
        ok = await client.post(f"/v1/rollbacks/{rid}/approve", headers=auth("bob"))
        assert ok.status == 200
        command_id = (await ok.json())["command_id"]
        again = await client.post(f"/v1/rollbacks/{rid}/approve", headers=auth("bob"))
        assert again.status == 409
        assert manual.service.get(rid).status == "approved"

    bootstrap = settings.bootstrap_servers
    assert bootstrap is not None
    commands = await read_until(bootstrap, settings.command_topic, lambda seen: len(seen) >= 1)
    assert len(commands) == 1
    command = commands[0]
    assert verify(command, b"sign-me")
    assert command["command_id"] == command_id
    assert (command["trigger"], command["requested_by"], command["approved_by"]) == (
        "manual",
        "alice",
        "bob",
    )
    assert command["procedure"] == "container_version_switch"
    assert command["traffic"]["action"] == "set_weight"

    audits = await read_until(bootstrap, settings.audit_topic, lambda seen: len(seen) >= 2)
    assert sorted(a["event"] for a in audits) == ["manual_approved", "manual_requested"]
    notes = await read_until(bootstrap, settings.notification_topic, lambda seen: len(seen) >= 2)
    assert sorted(n["decision"]["action"] for n in notes) == ["notify", "rollback"]


async def test_auth_and_state_errors_on_a_real_broker(settings: Settings) -> None:
    """401 without a token, 403 without a role, 409 nothing to roll back, 410 once expired."""
    clock = Clock()
    async with running(settings, clock) as (client, _manual):
        assert (await client.get("/v1/rollbacks")).status == 401
        resp = await client.post("/v1/rollbacks", json=BODY, headers=auth("carol"))
        assert resp.status == 403
        ghost = {**BODY, "service": "ghost"}
        assert (await client.post("/v1/rollbacks", json=ghost, headers=auth("alice"))).status == 409
        resp = await client.post("/v1/rollbacks", json=BODY, headers=auth("alice"))
        rid = (await resp.json())["id"]
        clock.now_ms += 30 * 60 * 1000
        late = await client.post(f"/v1/rollbacks/{rid}/approve", headers=auth("bob"))
        assert late.status == 410


async def test_pending_request_survives_restart_and_expires_from_the_log(
    settings: Settings,
) -> None:
    """A pending request made by one instance is seen by a fresh one, which later expires it."""
    clock = Clock()
    async with running(settings, clock) as (client, _manual):
        resp = await client.post("/v1/rollbacks", json=BODY, headers=auth("alice"))
        rid = (await resp.json())["id"]

    async with running(settings, clock) as (client, manual):
        shown = await client.get(f"/v1/rollbacks/{rid}", headers=auth("bob"))
        assert (await shown.json())["status"] == "pending"
        clock.now_ms += 31 * 60 * 1000
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while manual.service.get(rid).status != "expired" and loop.time() < deadline:  # noqa: ASYNC110 - polls another task's state
            await asyncio.sleep(0.1)
        assert manual.service.get(rid).status == "expired"

    async with running(settings, clock) as (client, _manual):
        shown = await client.get(f"/v1/rollbacks/{rid}", headers=auth("bob"))
        assert (await shown.json())["status"] == "expired"
    bootstrap = settings.bootstrap_servers
    assert bootstrap is not None
    audits = await read_until(bootstrap, settings.audit_topic, lambda seen: len(seen) >= 2)
    assert [a["event"] for a in audits].count("manual_expired") == 1


async def test_a_request_made_on_one_replica_is_seen_by_another(settings: Settings) -> None:
    """Two running instances share requests through the log: B sees A's request and approves it."""
    async with (
        running(settings) as (client_a, _a),
        running(settings) as (client_b, manual_b),
    ):
        resp = await client_a.post("/v1/rollbacks", json=BODY, headers=auth("alice"))
        rid = (await resp.json())["id"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        seen: Any = None
        while seen is None and loop.time() < deadline:
            seen = manual_b.request_log.view.get(rid)
            await asyncio.sleep(0.05)
        assert seen is not None
        ok = await client_b.post(f"/v1/rollbacks/{rid}/approve", headers=auth("bob"))
        assert ok.status == 200

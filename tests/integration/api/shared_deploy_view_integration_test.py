"""A manual request on a replica that does not own the service finds its deploy via snapshots."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from guardian.api import ManualRollbacks
from guardian.config.settings import Settings
from guardian.daemon.state import StateKeeper
from guardian.engine import Engine, load_rules
from guardian.kafka.admin import ensure_topics
from guardian.kafka.sink import KafkaSink
from guardian.metrics import GuardianMetrics
from tests.conftest import REPO
from tests.support.kafka import produce
from tests.support.manual import Lookup, auth, write_tokens
from tests.unit.engine.builders import deploy

pytestmark = pytest.mark.kafka


async def test_request_reaches_a_deploy_judged_by_another_replica(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """The owning replica's snapshot on the state topic is enough to target its deploy."""
    settings = settings_factory(tokens_file=write_tokens(tmp_path / "tokens.yaml"))
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    await ensure_topics(settings, bootstrap)
    owner = Engine(load_rules(REPO / "rules"))
    owner.process(deploy(0, deploy_id="d-elsewhere"))
    (record,) = StateKeeper(owner).outputs_for([("checkout", "production")])
    await produce(bootstrap, settings.state_topic, [(record.key, record.value)])

    async with (
        KafkaSink(settings, bootstrap) as sink,
        ManualRollbacks(settings, bootstrap, sink, Lookup(), GuardianMetrics()) as manual,
    ):
        app = web.Application()
        manual.install(app)
        task = asyncio.create_task(manual.run())
        try:
            async with TestClient(TestServer(app)) as client:
                response = await client.post(
                    "/v1/rollbacks",
                    json={"service": "checkout", "environment": "production", "reason": "x"},
                    headers=auth("alice"),
                )
                body = orjson.loads(await response.read())
        finally:
            task.cancel()
    assert response.status == 201, body
    assert body["deploy_id"] == "d-elsewhere"

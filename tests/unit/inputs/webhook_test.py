"""``POST /v1/events``: what it takes, what it refuses with which field, and the README's curl."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from guardian.errors import SinkError
from guardian.inputs.adapters.webhook import DeployWebhook
from guardian.inputs.records import OutRecord
from guardian.manual.tokens import TokenFile
from guardian.metrics import GuardianMetrics
from guardian.wire.events import LIVE_DEPLOY
from tests.integration.inputs.recipes import DEPLOYER, DEPLOYER_TOKEN, readme_block, run_script
from tests.support.cdevents import cdevent
from tests.support.events import deploy
from tests.support.manual import write_tokens

NOW = time.time_ns() // 1_000_000  # the route checks event time against its clock
AUTH = {"Authorization": f"Bearer {DEPLOYER_TOKEN}"}
Client = TestClient[web.Request, web.Application]


class FakeWriter:
    """Keeps what is written; can be not ready or failing."""

    def __init__(self) -> None:
        self.ready = True
        self.fail = False
        self.written: list[OutRecord] = []

    async def write(self, records: Sequence[OutRecord]) -> None:
        if self.fail:
            raise SinkError("broker away")
        self.written.extend(records)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[Client, FakeWriter]]:
    tokens = TokenFile(write_tokens(tmp_path / "t.yaml", DEPLOYER))
    tokens.load()
    writer = FakeWriter()
    webhook = DeployWebhook(writer, tokens, "deploy.events", GuardianMetrics())
    app = web.Application()
    webhook.install(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client, writer


async def _post(client: Client, body: Any, headers: dict[str, str] | None = None) -> Any:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with client.post("/v1/events", data=data, headers={**AUTH, **(headers or {})}) as r:
        return r.status, await r.json(content_type=None)


@pytest.mark.parametrize(
    ("name", "body", "headers", "deploy_id"),
    [
        ("v1 deploy", deploy(at_ms=NOW), {}, "d-1"),
        ("bare CDEvent", cdevent(at_ms=NOW), {}, None),
        (
            "structured CDEvent",
            {
                "specversion": "1.0",
                "id": "1",
                "source": "/s",
                "type": "dev.cdevents.service.rolledback.0.1.1",
                "data": cdevent("rolledback", at_ms=NOW),
            },
            {"Content-Type": "application/cloudevents+json"},
            LIVE_DEPLOY,
        ),
        (
            "HTTP binary CDEvent",
            cdevent(at_ms=NOW),
            {
                "ce-specversion": "1.0",
                "ce-type": "dev.cdevents.service.upgraded.0.1.1",
                "ce-id": "1",
                "ce-source": "/s",
                "Content-Type": "application/json",
            },
            None,
        ),
    ],
)
async def test_events_are_written_as_v1_keyed_by_service(
    client: tuple[Client, FakeWriter],
    name: str,
    body: dict[str, Any],
    headers: dict[str, str],
    deploy_id: str | None,
) -> None:
    """202 with the deploy id once written; what is written is the v1 event."""
    test_client, writer = client
    status, answer = await _post(test_client, body, headers)
    assert status == 202, (name, answer)
    assert answer["accepted"] == "deploy"
    [record] = writer.written
    assert (record.topic, record.key) == ("deploy.events", b"checkout")
    written = orjson.loads(record.value)
    assert written["kind"] == "deploy"
    assert written["deploy_id"] == answer["deploy_id"]
    if deploy_id is not None:
        assert answer["deploy_id"] == deploy_id


async def test_a_check_event_is_taken(client: tuple[Client, FakeWriter]) -> None:
    """Post-deploy checks from CI go the same way."""
    check = {
        "kind": "check",
        "service": "checkout",
        "environment": "production",
        "check": "api_health",
        "status": "fail",
        "timestamp": NOW,
    }
    status, answer = await _post(client[0], check)
    assert (status, answer["accepted"]) == (202, "check")


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("not JSON", b"{nope", "body"),
        ("v1 wrong type", {**deploy(at_ms=NOW), "strategy": "yolo"}, "strategy"),
        (
            "v1 missing field",
            {k: v for k, v in deploy(at_ms=NOW).items() if k != "version"},
            "body",
        ),
        (
            "metric event",
            {"kind": "metric", "service": "s", "environment": "e", "timestamp": NOW, "values": {}},
            "kind",
        ),
        ("CDEvent bad purl", cdevent(at_ms=NOW, version=""), "subject.content.artifactId"),
        (
            "another CDEvent type",
            {
                **cdevent(at_ms=NOW),
                "context": {
                    **cdevent(at_ms=NOW)["context"],
                    "type": "dev.cdevents.build.started.0.1.1",
                },
            },
            "type",
        ),
        ("far future", deploy(at_ms=NOW + 3_600_000), "timestamp"),
        ("live started", deploy(at_ms=NOW, deploy_id=LIVE_DEPLOY), "body"),
    ],
)
async def test_invalid_bodies_are_400_problems_with_the_field(
    client: tuple[Client, FakeWriter], name: str, body: Any, field: str
) -> None:
    """An RFC 9457 problem naming the field; nothing is written."""
    test_client, writer = client
    status, problem = await _post(test_client, body)
    assert status == 400, (name, problem)
    assert problem["type"].endswith("/invalid-event")
    assert [e["field"] for e in problem["errors"]] == [field], (name, problem)
    assert writer.written == []


async def test_missing_field_names_it_in_the_message(client: tuple[Client, FakeWriter]) -> None:
    """msgspec's 'missing required field' has no path, but says which field."""
    body = {k: v for k, v in deploy(at_ms=NOW).items() if k != "version"}
    _, problem = await _post(client[0], body)
    assert "`version`" in problem["detail"]


async def test_the_readme_error_example_is_what_it_answers(
    client: tuple[Client, FakeWriter],
) -> None:
    """The README shows the problem document of a package URL without a version."""
    shown = orjson.loads(readme_block("invalid-event"))
    document = cdevent(at_ms=NOW)
    document["subject"]["content"]["artifactId"] = "pkg:oci/checkout"
    status, problem = await _post(client[0], document)
    assert (status, problem) == (400, shown)


async def test_tokens_roles_size_and_kafka(client: tuple[Client, FakeWriter]) -> None:
    """401 unknown token, 403 without deployer, 413 too large, 503 while Kafka is away."""
    test_client, writer = client
    body = orjson.dumps(deploy(at_ms=NOW))
    async with test_client.post("/v1/events", data=body) as missing:
        assert missing.status == 401
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    sre = {"Authorization": "Bearer tok-alice-0123456789"}
    async with test_client.post("/v1/events", data=body, headers=sre) as forbidden:
        assert forbidden.status == 403
    huge = b'{"kind": "deploy", "x": "' + b"x" * 70_000 + b'"}'
    assert (await _post(test_client, huge))[0] == 413
    writer.fail = True
    status, problem = await _post(test_client, body)
    assert (status, problem["type"].rsplit("/", 1)[1]) == (503, "unavailable")
    writer.fail, writer.ready = False, False
    assert (await _post(test_client, body))[0] == 503
    assert writer.written == []


async def test_the_readme_curl_example_works(client: tuple[Client, FakeWriter]) -> None:
    """The README's curl, run by bash against the route: 202 and the deploy on its way."""
    test_client, writer = client
    url = str(test_client.make_url("")).rstrip("/")
    env = {"GUARDIAN_URL": url, "GUARDIAN_TOKEN": DEPLOYER_TOKEN}
    code, out, err = await run_script(readme_block("curl"), env)
    assert code == 0, err
    assert orjson.loads(out)["deploy_id"] == "d-8812"
    assert orjson.loads(writer.written[-1].value)["version"] == "2.4.1"


async def test_a_body_sent_in_pieces_is_read_whole(client: tuple[Client, FakeWriter]) -> None:
    """A chunked body (several writes, as a proxy or curl may send it) is not cut short."""
    test_client, writer = client
    raw = orjson.dumps(deploy(at_ms=NOW))

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 7):
            yield raw[start : start + 7]
            await asyncio.sleep(0.001)

    async with test_client.post("/v1/events", data=pieces(), headers=AUTH) as response:
        assert response.status == 202, await response.text()
    assert len(writer.written) == 1

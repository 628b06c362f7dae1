"""The /v1/rollbacks API over HTTP: authentication, roles, validation, the approval flow."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from guardian.api.problems import PROBLEM_JSON
from tests.support.manual import auth
from tests.unit.api.conftest import Api

BODY = {"service": "checkout", "environment": "production", "reason": "error spike"}


async def create(api: Api, who: str = "alice", **extra: Any) -> dict[str, Any]:
    """POST a request and return its JSON (asserting 201)."""
    resp = await api.client.post("/v1/rollbacks", json={**BODY, **extra}, headers=auth(who))
    assert resp.status == 201, await resp.text()
    body: dict[str, Any] = await resp.json()
    assert resp.headers["Location"] == f"/v1/rollbacks/{body['id']}"
    return body


async def problem(resp: Any, status: int) -> dict[str, Any]:
    """Assert a problem+json answer with ``status`` and return it."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == PROBLEM_JSON
    body: dict[str, Any] = await resp.json()
    assert body["status"] == status
    assert body["detail"]
    return body


async def test_request_self_approval_refused_then_second_person_approves(api: Api) -> None:
    """alice requests, alice's approval is 403, bob's approval is 200 with a command id."""
    req = await create(api)
    assert (req["status"], req["requested_by"], req["deploy_id"]) == ("pending", "alice", "d-1")
    assert req["expires_at"].endswith("Z")
    own = await api.client.post(f"/v1/rollbacks/{req['id']}/approve", headers=auth("alice"))
    assert "second person" in (await problem(own, 403))["detail"]
    ok = await api.client.post(f"/v1/rollbacks/{req['id']}/approve", headers=auth("bob"))
    assert ok.status == 200
    done = await ok.json()
    assert (done["status"], done["decided_by"]) == ("approved", "bob")
    assert done["command_id"].startswith("rb-")
    assert [o.role for o in api.writer.outputs].count("command") == 1
    again = await api.client.post(f"/v1/rollbacks/{req['id']}/approve", headers=auth("bob"))
    await problem(again, 409)
    shown = await api.client.get(f"/v1/rollbacks/{req['id']}", headers=auth("carol"))
    assert (await shown.json())["status"] == "approved"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer x"},
    ],
)
async def test_missing_or_unknown_token_is_401(api: Api, headers: dict[str, str]) -> None:
    """No bearer token, or one not in the tokens file, is 401 with a WWW-Authenticate challenge."""
    resp = await api.client.get("/v1/rollbacks", headers=headers)
    await problem(resp, 401)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_known_token_without_role_is_403(api: Api) -> None:
    """carol is known but holds neither SRE nor DevOps Lead."""
    resp = await api.client.post("/v1/rollbacks", json=BODY, headers=auth("carol"))
    assert "SRE" in (await problem(resp, 403))["detail"]


async def test_deny_then_decisions_conflict(api: Api) -> None:
    """A denied request records the reason; approving it afterwards is 409."""
    req = await create(api)
    resp = await api.client.post(
        f"/v1/rollbacks/{req['id']}/deny", json={"reason": "false alarm"}, headers=auth("bob")
    )
    assert resp.status == 200
    assert (await resp.json())["decision_reason"] == "false alarm"
    again = await api.client.post(f"/v1/rollbacks/{req['id']}/approve", headers=auth("bob"))
    await problem(again, 409)


async def test_expired_request_is_410(api: Api) -> None:
    """After 30 minutes without a decision, approving is 410 Gone."""
    req = await create(api)
    api.clock.now_ms += 30 * 60 * 1000
    resp = await api.client.post(f"/v1/rollbacks/{req['id']}/approve", headers=auth("bob"))
    await problem(resp, 410)


async def test_nothing_to_roll_back_is_409_with_why(api: Api) -> None:
    """A service without a known deploy gives 409 naming it."""
    resp = await api.client.post(
        "/v1/rollbacks", json={**BODY, "service": "ghost"}, headers=auth("alice")
    )
    assert "ghost" in (await problem(resp, 409))["detail"]


async def test_unknown_ids_and_paths_are_404_problems(api: Api) -> None:
    """Unknown request ids and unknown /v1 paths answer problem+json 404; bad methods 405."""
    await problem(await api.client.get("/v1/rollbacks/mr-x", headers=auth("bob")), 404)
    await problem(await api.client.get("/v1/nothing", headers=auth("bob")), 404)
    await problem(await api.client.delete("/v1/rollbacks", headers=auth("bob")), 405)


@pytest.mark.parametrize(
    ("data", "status", "field"),
    [
        (b"{not json", 400, None),
        (b"[1, 2]", 400, None),
        (b"", 400, None),
        (b'{"service": "checkout"}', 422, "environment"),
        (b'{"service": "", "environment": "p", "reason": "r"}', 422, "service"),
        (b'{"service": "s", "environment": "p", "reason": "r", "deployid": "x"}', 422, "deployid"),
        (b'{"service": 5, "environment": "p", "reason": "r"}', 422, "service"),
    ],
)
async def test_bad_bodies_are_400_or_422_naming_the_field(
    api: Api, data: bytes, status: int, field: str | None
) -> None:
    """Malformed JSON is 400; a body that misfits the schema is 422 listing the fields."""
    resp = await api.client.post(
        "/v1/rollbacks",
        data=data,
        headers={**auth("alice"), "Content-Type": "application/json"},
    )
    body = await problem(resp, status)
    if field is not None:
        assert field in [e["field"] for e in body["errors"]]


async def test_list_filters_and_validates_its_query(api: Api) -> None:
    """GET /v1/rollbacks filters by status and service; bad status or limit is 400."""
    first = await create(api)
    await create(api, service="cart")
    await api.client.post(f"/v1/rollbacks/{first['id']}/approve", headers=auth("bob"))

    async def ids(query: str) -> list[str]:
        resp = await api.client.get(f"/v1/rollbacks{query}", headers=auth("bob"))
        assert resp.status == 200
        return [item["service"] + ":" + item["status"] for item in (await resp.json())["items"]]

    assert await ids("") == ["cart:pending", "checkout:approved"]
    assert await ids("?status=approved") == ["checkout:approved"]
    assert await ids("?service=cart&limit=5") == ["cart:pending"]
    for query in (
        "?status=nope",
        "?limit=0",
        "?limit=abc",
        "?limit=%C2%B2",
        "?limit=5000",
        "?sort=x",
        "?status=",
        "?service=",
    ):
        await problem(await api.client.get(f"/v1/rollbacks{query}", headers=auth("bob")), 400)


async def test_broker_unavailable_is_503_with_retry_after(api: Api) -> None:
    """When the outputs are not acknowledged the answer is 503 and a retry succeeds."""
    req = await create(api)
    api.writer.fail = True
    resp = await api.client.post(f"/v1/rollbacks/{req['id']}/approve", headers=auth("bob"))
    await problem(resp, 503)
    assert resp.headers["Retry-After"] == "1"
    api.writer.fail = False
    resp = await api.client.post(f"/v1/rollbacks/{req['id']}/approve", headers=auth("bob"))
    assert resp.status == 200


async def test_openapi_document_is_served_without_token(api: Api) -> None:
    """/openapi.json is an OpenAPI 3.1 document listing every operation."""
    resp = await api.client.get("/openapi.json")
    doc = await resp.json()
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {
        "/v1/events",
        "/v1/rollbacks",
        "/v1/rollbacks/{id}",
        "/v1/rollbacks/{id}/approve",
        "/v1/rollbacks/{id}/deny",
    }
    assert "CreateRollback" in doc["components"]["schemas"]


async def test_other_paths_are_left_alone(api: Api) -> None:
    """The problem middleware does not touch routes outside /v1."""
    resp = await api.client.get("/healthz")
    assert await resp.text() == "alive"
    missing = await api.client.get("/nope")
    assert missing.status == 404
    assert missing.content_type != PROBLEM_JSON


async def test_unexpected_errors_become_500_problems() -> None:
    """A handler bug is answered as a 500 problem without internals, and logged."""
    from guardian.api.problems import problem_middleware

    async def boom(_request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    async def redirect(_request: web.Request) -> web.Response:
        raise web.HTTPFound("/v1/elsewhere")

    app = web.Application(middlewares=[problem_middleware])
    app.router.add_get("/v1/boom", boom)
    app.router.add_get("/v1/redirect", redirect)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/v1/boom")
        body = await problem(resp, 500)
        assert "secret" not in body["detail"]
        moved = await client.get("/v1/redirect", allow_redirects=False)
        assert moved.status == 302

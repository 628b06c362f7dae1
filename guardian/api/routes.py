"""The ``/v1/rollbacks`` handlers: authenticate, validate, call the manual service, answer JSON.

Authentication is ``Authorization: Bearer <token>`` checked against the
tokens file (401 when missing or unknown); roles are checked by the service
(403). Bodies are validated with pydantic: unparseable JSON is a 400, a body
that does not fit the schema a 422 listing each field at fault. Nothing a
client sends can make a handler answer 500.
"""

from __future__ import annotations

from typing import Any, TypeVar, get_args

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from guardian.api.openapi import openapi_document
from guardian.api.problems import ProblemError, problem_middleware
from guardian.api.schemas import CreateRollback, DenyRollback, RollbackOut
from guardian.manual.requests import Status
from guardian.manual.service import ManualService
from guardian.manual.tokens import Identity, TokenFile

Body = TypeVar("Body", bound=BaseModel)
STATUSES: tuple[str, ...] = get_args(Status)
MAX_LIMIT = 1000
_LIST_PARAMS = frozenset({"status", "service", "limit"})
_UNAUTHENTICATED = {"WWW-Authenticate": 'Bearer realm="guardian"'}


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


class RollbackRoutes:
    """Routes of the manual rollback API over one ``ManualService``."""

    def __init__(self, service: ManualService, tokens: TokenFile) -> None:
        self._service = service
        self._tokens = tokens

    def install(self, app: web.Application) -> None:
        """Add the API routes, ``/openapi.json`` and the problem+json middleware to ``app``."""
        app.middlewares.append(problem_middleware)
        app.router.add_post("/v1/rollbacks", self.create)
        app.router.add_get("/v1/rollbacks", self.list)
        app.router.add_get("/v1/rollbacks/{id}", self.show)
        app.router.add_post("/v1/rollbacks/{id}/approve", self.approve)
        app.router.add_post("/v1/rollbacks/{id}/deny", self.deny)
        app.router.add_get("/openapi.json", self.openapi)

    def _identify(self, request: web.Request) -> Identity:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ProblemError(
                401,
                "unauthenticated",
                "send 'Authorization: Bearer <token>'; tokens are issued with "
                "'guardian tokens new' and listed in the tokens file",
                headers=_UNAUTHENTICATED,
            )
        who = self._tokens.identify(token.strip())
        if who is None:
            raise ProblemError(
                401,
                "unauthenticated",
                "this token is not in the guardian's tokens file (revoked, or a typo)",
                headers=_UNAUTHENTICATED,
            )
        return who

    async def _body(self, request: web.Request, model: type[Body]) -> Body:
        raw = await request.read()
        try:
            data = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError as exc:
            raise ProblemError(400, "bad-json", f"the body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ProblemError(400, "bad-json", "the body must be a JSON object")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            errors = [
                {
                    "field": ".".join(str(p) for p in err["loc"]) or "body",
                    "message": err["msg"],
                }
                for err in exc.errors(include_url=False, include_input=False)
            ]
            summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
            raise ProblemError(
                422, "invalid-body", f"fix these fields: {summary}", extra={"errors": errors}
            ) from None

    async def create(self, request: web.Request) -> web.Response:
        """POST /v1/rollbacks → 201 with the pending request."""
        who = self._identify(request)
        body = await self._body(request, CreateRollback)
        req = await self._service.request(
            who,
            service=body.service,
            environment=body.environment,
            deploy_id=body.deploy_id,
            reason=body.reason,
        )
        response = _json(RollbackOut.of(req, self._service.now_ms()), status=201)
        response.headers["Location"] = f"/v1/rollbacks/{req.id}"
        return response

    async def approve(self, request: web.Request) -> web.Response:
        """POST /v1/rollbacks/{id}/approve → 200 once the command is acknowledged."""
        who = self._identify(request)
        req = await self._service.approve(who, request.match_info["id"])
        return _json(RollbackOut.of(req, self._service.now_ms()))

    async def deny(self, request: web.Request) -> web.Response:
        """POST /v1/rollbacks/{id}/deny → 200 with the denied request."""
        who = self._identify(request)
        body = await self._body(request, DenyRollback)
        req = await self._service.deny(who, request.match_info["id"], body.reason)
        return _json(RollbackOut.of(req, self._service.now_ms()))

    async def show(self, request: web.Request) -> web.Response:
        """GET /v1/rollbacks/{id}."""
        self._identify(request)
        req = self._service.get(request.match_info["id"])
        return _json(RollbackOut.of(req, self._service.now_ms()))

    async def list(self, request: web.Request) -> web.Response:
        """GET /v1/rollbacks?status=&service=&limit= → newest first."""
        self._identify(request)
        query = request.query
        unknown = sorted(set(query) - _LIST_PARAMS)
        if unknown:
            raise ProblemError(
                400,
                "bad-query",
                f"unknown query parameter(s) {', '.join(map(repr, unknown))}; "
                f"use {', '.join(sorted(_LIST_PARAMS))}",
            )
        status = query.get("status")
        if status is not None and status not in STATUSES:
            raise ProblemError(
                400, "bad-query", f"status must be one of {', '.join(STATUSES)}, not {status!r}"
            )
        if query.get("service") == "":
            raise ProblemError(400, "bad-query", "service must not be empty; leave it out instead")
        limit_text = query.get("limit", "100")
        if (
            not (limit_text.isascii() and limit_text.isdigit())
            or not 1 <= int(limit_text) <= MAX_LIMIT
        ):
            raise ProblemError(
                400, "bad-query", f"limit must be a whole number from 1 to {MAX_LIMIT}"
            )
        found = self._service.find(
            status=status,  # type: ignore[arg-type]  # checked against STATUSES above
            service=query.get("service"),
            limit=int(limit_text),
        )
        now = self._service.now_ms()
        return _json({"items": [RollbackOut.of(req, now) for req in found]})

    async def openapi(self, _request: web.Request) -> web.Response:
        """GET /openapi.json: the OpenAPI 3.1 document of this API (no token needed)."""
        return _json(openapi_document())

"""The OpenAPI 3.1 document of the control plane's JSON API, built from the models.

It covers the manual rollback API (``/v1/rollbacks``) and the deploy event
webhook (``POST /v1/events``). Schemas come from the same models that
validate requests (pydantic for the rollbacks, the v1 events' msgspec
structs for the webhook, see ``event_schemas``), so the document cannot
drift from the code; schemathesis generates requests from it in the test
suite. Prometheus remote write (``/api/v1/write``, snappy protobuf) is
Prometheus' own protocol and not described here. Built once and cached.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel

from guardian import __version__
from guardian.api.event_schemas import INPUT_EVENT, event_schemas
from guardian.api.schemas import CreateRollback, DenyRollback, Problem, RollbackList, RollbackOut

_REF = "#/components/schemas/{model}"
_MODELS: tuple[type[BaseModel], ...] = (
    CreateRollback,
    DenyRollback,
    RollbackOut,
    RollbackList,
    Problem,
)


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = event_schemas()
    for model in _MODELS:
        schema = model.model_json_schema(ref_template=_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _json_body(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(model=name)}}}


def _problems(*statuses: int, texts_of: dict[int, str] | None = None) -> dict[str, Any]:
    texts = {
        400: "Malformed JSON or query",
        401: "No token, or an unknown one",
        403: "The token's identity lacks the role, or approves its own request",
        404: "No such request",
        409: "Already decided, already pending, or nothing to roll back",
        410: "The request expired",
        422: "The body does not fit the schema",
        503: "The broker did not acknowledge the step; retry",
    }
    texts.update(texts_of or {})
    content = {"application/problem+json": {"schema": {"$ref": _REF.format(model="Problem")}}}
    return {str(s): {"description": texts[s], "content": content} for s in statuses}


def _ok(status: int, description: str, model: str) -> dict[str, Any]:
    return {str(status): {"description": description, "content": _json_body(model)}}


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}

_EVENTS: dict[str, Any] = {
    "post": {
        "operationId": "postEvent",
        "summary": "A deploy or check event (v1 JSON or a CDEvent): written to the deploy topic",
        "description": (
            "Needs the role deployer. A CDEvent may also come in CloudEvents binary mode "
            "(ce- headers, the CDEvent as the body). A resend is harmless: the deploy id "
            "is the same."
        ),
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model=INPUT_EVENT)}},
                "application/cloudevents+json": {
                    "schema": {"$ref": _REF.format(model="CloudEvent")}
                },
            },
        },
        "responses": {
            **_ok(202, "The event is on the deploy topic", "EventAccepted"),
            **_problems(
                400,
                401,
                403,
                413,
                503,
                texts_of={
                    400: "Not such an event; errors[] names the field at fault",
                    403: "The token's identity lacks the role deployer",
                    413: "The body is above the record size limit",
                    503: "The broker did not acknowledge the event; send again",
                },
            ),
        },
    }
}


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document, as a JSON-ready dict."""
    auth: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Rollback Guardian API",
            "version": __version__,
            "description": (
                "Request a rollback; a second SRE or DevOps Lead approves it. "
                "Announce deploys and check results (v1 events or CDEvents) by webhook."
            ),
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": auth,
        "paths": {
            "/v1/events": _EVENTS,
            "/v1/rollbacks": {
                "post": {
                    "operationId": "requestRollback",
                    "summary": "Request a manual rollback (pending until a second person approves)",
                    "requestBody": {"required": True, "content": _json_body("CreateRollback")},
                    "responses": {
                        **_ok(201, "The pending request", "RollbackOut"),
                        **_problems(400, 401, 403, 409, 422, 503),
                    },
                },
                "get": {
                    "operationId": "listRollbacks",
                    "summary": "List requests, newest first",
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {
                                "type": "string",
                                "enum": ["pending", "approved", "denied", "expired"],
                            },
                        },
                        {
                            "name": "service",
                            "in": "query",
                            "schema": {"type": "string", "minLength": 1},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                    ],
                    "responses": {
                        **_ok(200, "Matching requests", "RollbackList"),
                        **_problems(400, 401),
                    },
                },
            },
            "/v1/rollbacks/{id}": {
                "get": {
                    "operationId": "showRollback",
                    "summary": "One request",
                    "parameters": [_ID],
                    "responses": {
                        **_ok(200, "The request", "RollbackOut"),
                        **_problems(401, 404),
                    },
                }
            },
            "/v1/rollbacks/{id}/approve": {
                "post": {
                    "operationId": "approveRollback",
                    "summary": "Approve: the signed manual command is written before the answer",
                    "parameters": [_ID],
                    "responses": {
                        **_ok(200, "The approved request", "RollbackOut"),
                        **_problems(401, 403, 404, 409, 410, 503),
                    },
                }
            },
            "/v1/rollbacks/{id}/deny": {
                "post": {
                    "operationId": "denyRollback",
                    "summary": "Deny a pending request",
                    "parameters": [_ID],
                    "requestBody": {"required": True, "content": _json_body("DenyRollback")},
                    "responses": {
                        **_ok(200, "The denied request", "RollbackOut"),
                        **_problems(400, 401, 403, 404, 409, 410, 422, 503),
                    },
                }
            },
        },
    }

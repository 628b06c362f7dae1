"""``/openapi.json`` describes ``POST /v1/events``: real bodies of every accepted form validate."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import orjson
import pytest

from guardian.api.openapi import openapi_document
from tests.support.cdevents import cdevent, kafka_form
from tests.support.events import deploy

AT_MS = 1_795_478_400_000
CHECK = {
    "kind": "check",
    "service": "checkout",
    "environment": "production",
    "check": "api-health",
    "status": "fail",
    "timestamp": "2026-11-24T10:00:00Z",
}


def _validator(media_type: str) -> jsonschema_rs.Draft202012Validator:
    document = openapi_document()
    body = document["paths"]["/v1/events"]["post"]["requestBody"]["content"][media_type]
    schema = {**body["schema"], "components": document["components"]}
    return jsonschema_rs.Draft202012Validator(schema)


def test_the_webhook_is_an_operation_of_the_document() -> None:
    """postEvent answers 202 with what was accepted, and problems for the rest."""
    operation = openapi_document()["paths"]["/v1/events"]["post"]
    assert operation["operationId"] == "postEvent"
    assert sorted(operation["responses"]) == ["202", "400", "401", "403", "413", "503"]
    assert operation["responses"]["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EventAccepted"
    }


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(deploy("completed"), id="v1 deploy event"),
        pytest.param(CHECK, id="v1 check event"),
        pytest.param(cdevent("upgraded", at_ms=AT_MS), id="bare CDEvent 0.3"),
        pytest.param(
            cdevent("deployed", at_ms=AT_MS, spec="0.4.1", event_version="0.2.0"),
            id="bare CDEvent 0.4",
        ),
        pytest.param(
            orjson.loads(kafka_form(cdevent("rolledback", at_ms=AT_MS), "structured")[1]),
            id="structured CloudEvent",
        ),
    ],
)
def test_every_accepted_form_fits_the_request_schema(body: dict[str, Any]) -> None:
    """What the webhook takes is valid by the document (schemathesis relies on it)."""
    _validator("application/json").validate(body)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({**CHECK, "status": "maybe"}, id="unknown check status"),
        pytest.param({"kind": "metric", "service": "a"}, id="a metric event"),
        pytest.param(
            {**cdevent(at_ms=AT_MS), "context": {**cdevent(at_ms=AT_MS)["context"], "type": "x"}},
            id="not a CDEvents type",
        ),
    ],
)
def test_what_it_refuses_does_not_fit(body: dict[str, Any]) -> None:
    """Bodies the webhook answers 400 are invalid by the document too."""
    assert not _validator("application/json").is_valid(body)


def test_a_structured_cloudevent_carries_its_own_type_in_data() -> None:
    """The envelope's type must be the CDEvent's: another one does not fit."""
    envelope = orjson.loads(kafka_form(cdevent("upgraded", at_ms=AT_MS), "structured")[1])
    validator = _validator("application/cloudevents+json")
    validator.validate(envelope)
    envelope["type"] = "dev.cdevents.service.deployed.0.1.1"
    assert not validator.is_valid(envelope)

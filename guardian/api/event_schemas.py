"""JSON Schemas of what ``POST /v1/events`` takes and answers, for the OpenAPI document.

The v1 deploy and check events come from the msgspec structs that decode
them (``guardian.wire.events``), so their schemas cannot drift from the
decoder. The CDEvent and CloudEvent shapes are written out here: they
describe what ``guardian.wire.cdevents`` reads (service ``deployed``,
``upgraded`` and ``rolledback``, spec 0.2 to 0.4), no more; the decoder
stays the judge (a package URL without a version is still a 400). Limits:
"not more than ``max_future_skew_s`` ahead of the clock" cannot be said in
a schema; the webhook answers 400 for such a timestamp.
"""

from __future__ import annotations

from typing import Any

import msgspec

from guardian.wire.events import (
    MAX_EVENT_TIME_MS,
    MIN_EVENT_TIME_MS,
    CheckEvent,
    DeployEvent,
    EventTime,
)

_REF = "#/components/schemas/{name}"
_TEXT = {"type": "string", "minLength": 1, "maxLength": 2048}
_LABEL = {"type": "string", "minLength": 1, "maxLength": 256}
# Events are dated 2000-01-01..2100-01-01 (``guardian.wire.events``); the years 2001 to
# 2098 keep any UTC offset inside.
_TIME = {"type": "string", "format": "date-time", "pattern": "^20(0[1-9]|[1-8][0-9]|9[0-8])-"}
# pkg:type/name@version[?qualifiers][#subpath], printable ASCII, the version not escaped.
_PURL = r"^pkg:[a-z]+/[!-\x22$-\x3e\x41-~]{1,200}@[!-\x22$&-.0-\x3e\x41-~]{1,200}([?#][!-~]*)?$"
# An identifier whose last path segment becomes a v1 label: printable, no trailing slash.
_PATH_ID = {"type": "string", "pattern": "^[!-~]{0,255}[!-.0-~]$"}
_CDEVENT_TYPES = r"^dev\.cdevents\.service\.(deployed|upgraded|rolledback)\.\d+\.\d+\.\d+([-+].*)?$"


def _schema_hook(kind: type) -> dict[str, Any]:
    if kind is EventTime:
        return {
            "description": "RFC 3339, or epoch milliseconds",
            "anyOf": [
                {"type": "integer", "minimum": MIN_EVENT_TIME_MS, "maximum": MAX_EVENT_TIME_MS},
                _TIME,
            ],
        }
    raise NotImplementedError(f"no JSON Schema for {kind!r}")  # pragma: no cover


_CDEVENT: dict[str, Any] = {
    "title": "CDEvent",
    "description": (
        "A CDEvents service.deployed, service.upgraded or service.rolledback document. "
        "The service is the last segment of subject.id, the environment that of "
        "subject.content.environment.id, the version that of the package URL artifactId."
    ),
    "type": "object",
    "required": ["context", "subject"],
    "properties": {
        "context": {
            "type": "object",
            "required": ["version", "id", "source", "type", "timestamp"],
            "properties": {
                "version": {"type": "string", "pattern": r"^0\.[234]\.\d+([-+].*)?$"},
                "id": _TEXT,
                "source": _TEXT,
                "type": {"type": "string", "pattern": _CDEVENT_TYPES},
                "timestamp": _TIME,
            },
        },
        "subject": {
            "type": "object",
            "required": ["id", "content"],
            "properties": {
                "id": _PATH_ID,
                "content": {
                    "type": "object",
                    "required": ["environment", "artifactId"],
                    "properties": {
                        "environment": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {"id": _PATH_ID},
                        },
                        "artifactId": {
                            "type": "string",
                            "description": "A package URL with a version",
                            "pattern": _PURL,
                            "examples": ["pkg:oci/checkout@2.4.1"],
                        },
                    },
                },
            },
        },
        "customData": {
            "description": "May carry the v1 strategy, component and regions",
        },
    },
}

# CloudEvents binding: the envelope's type is the CDEvent's own. A schema cannot say
# "equal", so it lists these versions; other versions of the same types are read too.
_CLOUDEVENT_TYPES = tuple(
    f"dev.cdevents.service.{predicate}.{version}"
    for predicate in ("deployed", "upgraded", "rolledback")
    for version in ("0.1.0", "0.1.1", "0.2.0")  # CDEvents 0.2, 0.3, 0.4
)


def _cloudevent(event_type: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["specversion", "type", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "type": {"const": event_type},
            "source": _TEXT,
            "id": _TEXT,
            "datacontenttype": {"type": "string", "pattern": "json"},
            "data": {
                "allOf": [
                    {"$ref": _REF.format(name="CDEvent")},
                    {"properties": {"context": {"properties": {"type": {"const": event_type}}}}},
                ]
            },
        },
    }


_CLOUDEVENT: dict[str, Any] = {
    "title": "CloudEvent",
    "description": (
        "A CDEvent in CloudEvents structured mode (application/cloudevents+json); "
        "its type is the CDEvent's context.type"
    ),
    "oneOf": [_cloudevent(event_type) for event_type in _CLOUDEVENT_TYPES],
}

_ACCEPTED: dict[str, Any] = {
    "title": "EventAccepted",
    "description": "The event is on the deploy topic",
    "type": "object",
    "required": ["accepted", "service"],
    "properties": {
        "accepted": {"enum": ["deploy", "check"]},
        "service": {"type": "string"},
        "type": {"type": "string"},
        "deploy_id": {"type": "string"},
        "version": {"type": "string"},
    },
}

INPUT_EVENT = "InputEvent"


def event_schemas() -> dict[str, Any]:
    """The schemas ``/v1/events`` refers to, by name (``InputEvent`` is the request body)."""
    (deploy, check), schemas = msgspec.json.schema_components(
        (DeployEvent, CheckEvent), schema_hook=_schema_hook, ref_template=_REF
    )
    cdevent = {"$ref": _REF.format(name="CDEvent")}
    cloudevent = {"$ref": _REF.format(name="CloudEvent")}
    schemas[INPUT_EVENT] = {
        "description": "A v1 deploy or check event, or a CDEvent (bare or structured mode)",
        "anyOf": [deploy, check, cdevent, cloudevent],
    }
    schemas.update(CDEvent=_CDEVENT, CloudEvent=_CLOUDEVENT, EventAccepted=_ACCEPTED)
    return schemas

"""CDEvents for tests, in the shapes of the spec's examples, and their CloudEvents Kafka forms.

The Kafka forms are built by the CloudEvents Python SDK (``cloudevents``),
an implementation of the Kafka protocol binding independent of the
guardian's decoder, so the tests check interoperability, not agreement
with ourselves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson
from cloudevents.core.bindings import kafka
from cloudevents.core.v1.event import CloudEvent

from guardian.wire.records import format_time

Mode = Literal["bare", "structured", "binary"]


def cdevent(
    predicate: str = "upgraded",
    *,
    service: str = "checkout",
    environment: str = "production",
    version: str = "2.4.1",
    at_ms: int,
    event_id: str = "271069a8-fc18-44f1-b38f-9d70a1695819",
    spec: str = "0.3.0",
    event_version: str = "0.1.1",
    custom: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A CDEvents ``service.<predicate>`` document (context and subject)."""
    document: dict[str, Any] = {
        "context": {
            "version": spec,
            "id": event_id,
            "source": "/argocd/prod",
            "type": f"dev.cdevents.service.{predicate}.{event_version}",
            "timestamp": format_time(at_ms),
        },
        "subject": {
            "id": f"/clusters/prod/{service}",
            "source": "/argocd/prod",
            "type": "service",
            "content": {
                "environment": {"id": environment, "source": "/clusters/prod"},
                "artifactId": f"pkg:oci/{service}@{version}?repository_url=ghcr.io/acme",
            },
        },
    }
    if custom is not None:
        document["customData"] = custom
        document["customDataContentType"] = "application/json"
    return document


def kafka_form(document: dict[str, Any], mode: Mode) -> tuple[list[tuple[str, bytes]], bytes]:
    """(headers, value) of a Kafka record carrying the CDEvent in ``mode``."""
    if mode == "bare":
        return [], orjson.dumps(document)
    context = document["context"]
    event = CloudEvent(
        attributes={
            "id": context["id"],
            "source": context["source"],
            "type": context["type"],
            "subject": document["subject"]["id"],
            "time": datetime.fromisoformat(context["timestamp"]),
            "datacontenttype": "application/json",
        },
        data=document,
    )
    message = kafka.to_binary_event(event) if mode == "binary" else kafka.to_structured_event(event)
    return list(message.headers.items()), message.value

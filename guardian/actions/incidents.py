"""Rollback decisions as CDEvents ``incident.detected`` / ``incident.resolved``, for CD tools.

Each automatic rollback command is also published as an ``incident.detected``
CDEvent (spec 0.3.0, event type 0.1.0) and the executor's confirmation of a
deploy the guardian rolled back (a ``rolled_back`` or ``failed`` step) as
``incident.resolved``, in CloudEvents structured mode
(``content-type: application/cloudevents+json``) on the incident topic,
keyed by service. The incident's id is derived from the deploy, so both
events name the same incident, and the event ids from the command and the
confirmation, so a redelivered batch publishes the same events again (listeners
dedupe on ``source`` + ``id``). ``customData`` carries what a listener acts on:
the command id, deploy, rule, versions and evidence.

Also here: which deploy a confirmation closes (``confirmed_deploy``), since
a ``@live`` step names the service, not the deploy. Pure: records, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

import orjson

from guardian.actions.outputs import OutputRecord
from guardian.engine.decision import Decision, DeployInfo
from guardian.wire.events import LIVE_DEPLOY, DeployEvent
from guardian.wire.records import RollbackCommand, format_time

SPEC_VERSION = "0.3.0"
DETECTED = "dev.cdevents.incident.detected.0.1.0"
RESOLVED = "dev.cdevents.incident.resolved.0.1.0"
STRUCTURED = (("content-type", b"application/cloudevents+json; charset=UTF-8"),)

DeployLookup = Callable[[str, str], DeployInfo | None]
Closing = Literal["rolled_back", "failed"]


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def incident_id(deploy_id: str) -> str:
    """The id of the incident of a deploy the guardian rolled back."""
    return "inc-" + _digest("incident", deploy_id)


class IncidentEvents:
    """Builds the incident CDEvents of one guardian (``source``, e.g. ``/guardian/<group>``)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def detected(self, decision: Decision, command: RollbackCommand) -> OutputRecord:
        """``incident.detected`` for an automatic rollback command."""
        custom = {
            "command_id": command.command_id,
            "deploy_id": command.deploy_id,
            "rule": command.rule,
            "from_version": command.from_version,
            "to_version": command.to_version,
            "regions": command.regions,
            "evidence": command.evidence.model_dump(mode="json", exclude_none=True),
        }
        return self._record(
            DETECTED,
            "ind-" + _digest(command.command_id),
            decision.at_ms,
            command.deploy_id,
            decision.service,
            decision.environment,
            f"{decision.rule}: {decision.reason}",
            custom,
        )

    def resolved(self, deploy: DeployInfo, status: Closing, at_ms: int) -> OutputRecord:
        """``incident.resolved`` once the executor confirmed (or gave up on) the rollback."""
        custom = {
            "deploy_id": deploy.deploy_id,
            "status": status,
            "rule": deploy.rollback_rule,
            "version": deploy.version,
            "previous_version": deploy.previous_version,
        }
        done = "rolled back" if status == "rolled_back" else "rollback failed"
        return self._record(
            RESOLVED,
            "inr-" + _digest(deploy.deploy_id, status, str(at_ms)),
            at_ms,
            deploy.deploy_id,
            deploy.service,
            deploy.environment,
            f"deploy {deploy.deploy_id} of {deploy.service} {done}",
            custom,
        )

    def _record(
        self,
        event_type: str,
        event_id: str,
        at_ms: int,
        deploy_id: str,
        service: str,
        environment: str,
        description: str,
        custom: dict[str, Any],
    ) -> OutputRecord:
        time = format_time(at_ms)
        subject = incident_id(deploy_id)
        cdevent = {
            "context": {
                "version": SPEC_VERSION,
                "id": event_id,
                "source": self.source,
                "type": event_type,
                "timestamp": time,
            },
            "subject": {
                "id": subject,
                "source": self.source,
                "type": "incident",
                "content": {
                    "description": description[:1000],
                    "environment": {"id": environment},
                    "service": {"id": service},
                },
            },
            "customData": custom,
            "customDataContentType": "application/json",
        }
        cloudevent = {
            "specversion": "1.0",
            "id": event_id,
            "source": self.source,
            "type": event_type,
            "subject": subject,
            "time": time,
            "datacontenttype": "application/json",
            "data": cdevent,
        }
        return OutputRecord("incident", service.encode(), orjson.dumps(cloudevent), STRUCTURED)


def confirmed_deploy(event: DeployEvent, lookup: DeployLookup | None) -> DeployInfo | None:
    """The deploy a ``rolled_back`` / ``failed`` step (already fed to the engine) closed.

    With the engine's view (``lookup``), its own record of the deploy (the
    rule it rolled back with, the version it replaced). A ``@live`` step is
    about whatever deploy the service has; None when it had none to close.
    Without a lookup, or for an older deploy than the service's current one,
    the deploy as the event describes it.
    """
    status: Closing = "rolled_back" if event.type == "rolled_back" else "failed"
    known = lookup(event.service, event.environment) if lookup is not None else None
    if event.deploy_id == LIVE_DEPLOY:
        return known if known is not None and known.status == status else None
    if known is not None and known.deploy_id == event.deploy_id:
        return replace(known, status=status)
    return DeployInfo(
        deploy_id=event.deploy_id,
        service=event.service,
        environment=event.environment,
        version=event.version,
        previous_version=event.previous_version,
        strategy=event.strategy,
        component=event.component,
        regions=tuple(event.regions),
        started_at_ms=event.timestamp,
        status=status,
    )

"""Bodies of the ``/v1/rollbacks`` API as pydantic models: validation and the OpenAPI schemas.

Request bodies forbid unknown fields so a typo (``deployid``) is a 422 rather
than silently ignored. Responses are built from ``RollbackRequest`` by
``RollbackOut.of``; times are RFC 3339 like every output of the guardian.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from guardian.manual.requests import RollbackRequest, Status
from guardian.wire.records import format_time


class CreateRollback(BaseModel):
    """POST /v1/rollbacks: what to roll back and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str = Field(min_length=1, max_length=200, description="Service to roll back")
    environment: str = Field(min_length=1, max_length=200, description="Its environment")
    deploy_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Deploy to roll back; default: the active or last completed one",
    )
    reason: str = Field(min_length=1, max_length=2000, description="Why, for the approver")


class DenyRollback(BaseModel):
    """POST /v1/rollbacks/{id}/deny: why not."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field(min_length=1, max_length=2000, description="Why the rollback is denied")


class DeployOut(BaseModel):
    """The deploy a request targets."""

    deploy_id: str
    version: str
    previous_version: str | None
    strategy: str
    component: str
    regions: list[str]


class RollbackOut(BaseModel):
    """A manual rollback request as the API shows it."""

    id: str
    status: Status
    service: str
    environment: str
    deploy_id: str
    reason: str
    requested_by: str
    requested_at: str
    expires_at: str
    decided_by: str | None
    decided_at: str | None
    decision_reason: str | None
    command_id: str | None
    deploy: DeployOut

    @classmethod
    def of(cls, req: RollbackRequest, now_ms: int) -> dict[str, Any]:
        """The JSON body for a request (a dict, to skip re-validation on the hot path)."""
        key = (req.id, req.revision)
        body = _BODY_CACHE.get(key)
        if body is None:
            if len(_BODY_CACHE) >= _BODY_CACHE_SIZE:
                _BODY_CACHE.clear()  # crude but bounded; rebuilt from the hot requests
            body = _BODY_CACHE[key] = _body(req)
        # Only the status depends on the clock (pending turns expired at the deadline).
        return {**body, "status": req.status_at(now_ms)}


# Bodies by (request id, revision): revisions are immutable, and formatting timestamps was
# the largest cost of GET /v1/rollbacks under load.
_BODY_CACHE: dict[tuple[str, int], dict[str, Any]] = {}
_BODY_CACHE_SIZE = 20_000


def _body(req: RollbackRequest) -> dict[str, Any]:
    d = req.deploy
    return {
        "id": req.id,
        "status": req.status,
        "service": req.service,
        "environment": req.environment,
        "deploy_id": d.deploy_id,
        "reason": req.reason,
        "requested_by": req.requested_by,
        "requested_at": format_time(req.requested_at_ms),
        "expires_at": format_time(req.expires_at_ms),
        "decided_by": req.decided_by,
        "decided_at": format_time(req.decided_at_ms) if req.decided_at_ms is not None else None,
        "decision_reason": req.decision_reason,
        "command_id": req.command_id,
        "deploy": {
            "deploy_id": d.deploy_id,
            "version": d.version,
            "previous_version": d.previous_version,
            "strategy": d.strategy,
            "component": d.component,
            "regions": list(d.regions),
        },
    }


class RollbackList(BaseModel):
    """GET /v1/rollbacks: matching requests, newest first."""

    items: list[RollbackOut]


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None

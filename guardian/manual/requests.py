"""The manual rollback request and its state machine: pending → approved | denied | expired.

Pure: no I/O, no clock (``now_ms`` is passed in). Every transition returns a
new ``RollbackRequest`` with ``revision`` one higher, which is how replicas
reading the request log keep the newest state of a request. Refusals raise
``ManualError`` with a ``kind`` the HTTP layer maps to a status:

    ManualError(kind=...)
    ├── not_found        no such request (404)
    ├── forbidden        no role, or approving one's own request (403)
    ├── conflict         already decided, or nothing to roll back (409)
    └── expired          the request expired before a decision (410)

A pending request past ``expires_at_ms`` counts as expired even before an
``expired`` record is written, so a slow expiry sweep never lets a stale
request through.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from guardian.engine.decision import DeployInfo
from guardian.errors import GuardianError
from guardian.manual.policy import ManualPolicy
from guardian.manual.tokens import Identity

Status = Literal["pending", "approved", "denied", "expired"]
ErrorKind = Literal["not_found", "forbidden", "conflict", "expired", "unavailable"]
STATUSES: tuple[Status, ...] = ("pending", "approved", "denied", "expired")


class ManualError(GuardianError):
    """A manual rollback step was refused; ``kind`` says why, the message says what to do."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message, retriable=kind == "unavailable")
        self.kind: ErrorKind = kind


@dataclass(frozen=True, slots=True)
class RollbackRequest:
    """One request for a manual rollback and, once decided, who decided and why."""

    id: str
    service: str
    environment: str
    deploy: DeployInfo
    reason: str
    requested_by: str
    requested_at_ms: int
    expires_at_ms: int
    status: Status = "pending"
    decided_by: str | None = None
    decided_at_ms: int | None = None
    decision_reason: str | None = None
    command_id: str | None = None
    revision: int = 1

    def status_at(self, now_ms: int) -> Status:
        """The status as of ``now_ms``: a pending request past its expiry is expired."""
        if self.status == "pending" and now_ms >= self.expires_at_ms:
            return "expired"
        return self.status

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in the request log."""
        data = asdict(self)
        data["deploy"]["regions"] = list(self.deploy.regions)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RollbackRequest:
        """Inverse of ``to_dict``; KeyError/TypeError/ValueError on a malformed record."""
        deploy_data = dict(data["deploy"])
        deploy_data["regions"] = tuple(deploy_data.get("regions") or ())
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["deploy"] = DeployInfo(**deploy_data)
        if fields.get("status", "pending") not in STATUSES:
            raise ValueError(f"unknown status {fields.get('status')!r}")
        return cls(**fields)


def request_id(service: str, environment: str, requested_by: str, at_ms: int, nonce: str) -> str:
    """A short, unique id for a new request."""
    material = f"{service}|{environment}|{requested_by}|{at_ms}|{nonce}".encode()
    return "mr-" + hashlib.sha256(material).hexdigest()[:20]


def require_requester(who: Identity, policy: ManualPolicy) -> None:
    """Raise ManualError(forbidden) unless ``who`` may ask for a rollback."""
    if not policy.may_request(who):
        raise ManualError(
            "forbidden",
            f"{who.id} holds none of the roles that may request a rollback "
            f"({', '.join(sorted(policy.requester_roles))})",
        )


def open_request(
    *,
    request_id: str,
    deploy: DeployInfo,
    reason: str,
    who: Identity,
    policy: ManualPolicy,
    now_ms: int,
) -> RollbackRequest:
    """A new pending request, if ``who`` may ask for one."""
    require_requester(who, policy)
    return RollbackRequest(
        id=request_id,
        service=deploy.service,
        environment=deploy.environment,
        deploy=deploy,
        reason=reason,
        requested_by=who.id,
        requested_at_ms=now_ms,
        expires_at_ms=now_ms + policy.request_ttl_ms,
    )


def _check_decidable(
    req: RollbackRequest, who: Identity, policy: ManualPolicy, now_ms: int
) -> None:
    if not policy.may_decide(who):
        raise ManualError(
            "forbidden",
            f"{who.id} holds none of the roles that may approve or deny "
            f"({', '.join(sorted(policy.approver_roles))})",
        )
    status = req.status_at(now_ms)
    if status == "expired":
        raise ManualError(
            "expired", f"request {req.id} expired without a decision; file a new request"
        )
    if status != "pending":
        raise ManualError("conflict", f"request {req.id} was already {status} by {req.decided_by}")


def approve(
    req: RollbackRequest, who: Identity, policy: ManualPolicy, now_ms: int, command_id: str
) -> RollbackRequest:
    """The approved request; the approver must be someone other than the requester."""
    _check_decidable(req, who, policy, now_ms)
    if who.id == req.requested_by:
        # 403, not 409: the request is fine, this identity may not approve it.
        raise ManualError(
            "forbidden",
            f"{who.id} requested {req.id} and cannot approve it; a second person must approve",
        )
    return replace(
        req,
        status="approved",
        decided_by=who.id,
        decided_at_ms=now_ms,
        command_id=command_id,
        revision=req.revision + 1,
    )


def deny(
    req: RollbackRequest, who: Identity, policy: ManualPolicy, now_ms: int, reason: str
) -> RollbackRequest:
    """The denied request; the requester may withdraw their own request this way."""
    _check_decidable(req, who, policy, now_ms)
    return replace(
        req,
        status="denied",
        decided_by=who.id,
        decided_at_ms=now_ms,
        decision_reason=reason,
        revision=req.revision + 1,
    )


def expire(req: RollbackRequest, now_ms: int) -> RollbackRequest | None:
    """The expired request, or None if it is not a pending request past its expiry."""
    if req.status != "pending" or now_ms < req.expires_at_ms:
        return None
    return replace(
        req, status="expired", decided_at_ms=req.expires_at_ms, revision=req.revision + 1
    )


def newer(current: RollbackRequest | None, incoming: RollbackRequest) -> bool:
    """True when ``incoming`` should replace ``current`` in a view (higher revision wins)."""
    return current is None or incoming.revision > current.revision

"""Manual rollbacks end to end, minus HTTP and Kafka: request, approve, deny, expire.

``ManualService`` checks the policy and state machine, writes the step's
outputs (command, audit, notification), then the new revision of the
request to the request log, and returns only when the broker acknowledged
all of them. If any write fails the step is refused with
``ManualError("unavailable")`` and the view is unchanged, so the caller can
retry; ids are deterministic, so a retried approval re-sends the same
command id and executors dedupe it.

Two replicas may accept the same decision at the same moment (the log has no
compare-and-set); both then emit the same command id, so the rollback still
happens once. Within one process, decisions on one request are serialised.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

import structlog

from guardian.engine.decision import DeployInfo
from guardian.errors import GuardianError
from guardian.manual.policy import ManualPolicy
from guardian.manual.records import ManualOutput, Step, manual_command, step_outputs
from guardian.manual.requests import (
    ManualError,
    RollbackRequest,
    Status,
    approve,
    deny,
    expire,
    open_request,
    request_id,
    require_requester,
)
from guardian.manual.tokens import Identity
from guardian.manual.view import RequestView
from guardian.wire.records import RollbackCommand

log = structlog.get_logger(__name__)

DeployLookup = Callable[[str, str], DeployInfo | None]


class RequestLog(Protocol):
    """Where requests are kept: a view to read, and ``put`` that returns once durable."""

    @property
    def view(self) -> RequestView: ...

    async def put(self, req: RollbackRequest) -> None: ...


class OutputWriter(Protocol):
    """Writes a step's outputs and returns once the broker acknowledged them."""

    async def write(self, outputs: Sequence[ManualOutput]) -> None: ...


class _KeyedLocks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the lock of ``key`` for the ``async with`` body."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class ManualService:
    """Request, approve, deny, list and expire manual rollbacks."""

    def __init__(
        self,
        requests: RequestLog,
        outputs: OutputWriter,
        deploy_lookup: DeployLookup,
        *,
        policy: ManualPolicy,
        clock_ms: Callable[[], int],
        signing_key: bytes | None = None,
        on_command: Callable[[], None] = lambda: None,
    ) -> None:
        self._requests = requests
        self._outputs = outputs
        self._lookup = deploy_lookup
        self.policy = policy
        self._clock_ms = clock_ms
        self._signing_key = signing_key
        self._on_command = on_command
        self._locks = _KeyedLocks()

    def get(self, rid: str) -> RollbackRequest:
        """One request; ManualError(not_found) when unknown."""
        req = self._requests.view.get(rid)
        if req is None:
            raise ManualError(
                "not_found", f"no rollback request {rid!r}; list them with GET /v1/rollbacks"
            )
        return req

    def find(
        self, *, status: Status | None = None, service: str | None = None, limit: int = 100
    ) -> list[RollbackRequest]:
        """Requests matching the filters, newest first."""
        return self._requests.view.select(
            now_ms=self._clock_ms(), status=status, service=service, limit=limit
        )

    def now_ms(self) -> int:
        """The service's clock (what ``status_at`` is evaluated against)."""
        return self._clock_ms()

    def _target(self, service: str, environment: str, deploy_id: str | None) -> DeployInfo:
        deploy = self._lookup(service, environment)
        if deploy is None:
            raise ManualError(
                "conflict",
                f"nothing to roll back: the guardian knows no active or completed deploy of "
                f"{service} in {environment}",
            )
        if deploy_id is not None and deploy.deploy_id != deploy_id:
            raise ManualError(
                "conflict",
                f"deploy {deploy_id} is not the active or last completed deploy of {service} in "
                f"{environment} (that is {deploy.deploy_id}); only it can be rolled back",
            )
        return deploy

    async def request(
        self, who: Identity, *, service: str, environment: str, deploy_id: str | None, reason: str
    ) -> RollbackRequest:
        """Open a pending request against the target deploy."""
        require_requester(who, self.policy)
        deploy = self._target(service, environment, deploy_id)
        async with self._locks.hold("deploy:" + deploy.deploy_id):
            now = self._clock_ms()
            for other in self._requests.view.pending():
                if other.deploy.deploy_id == deploy.deploy_id and other.status_at(now) == "pending":
                    raise ManualError(
                        "conflict",
                        f"request {other.id} by {other.requested_by} is already pending for deploy "
                        f"{deploy.deploy_id}; approve or deny it instead",
                    )
            rid = request_id(service, environment, who.id, now, secrets.token_hex(8))
            req = open_request(
                request_id=rid,
                deploy=deploy,
                reason=reason,
                who=who,
                policy=self.policy,
                now_ms=now,
            )
            await self._commit(req, "requested", now, actor=who.id)
        return req

    async def approve(self, who: Identity, rid: str) -> RollbackRequest:
        """Approve a pending request: emits the signed manual command."""
        async with self._locks.hold("request:" + rid):
            current = self.get(rid)
            now = self._clock_ms()
            command = manual_command(
                current, approved_by=who.id, now_ms=now, signing_key=self._signing_key
            )
            req = approve(current, who, self.policy, now, command.command_id)
            await self._commit(req, "approved", now, actor=who.id, command=command)
        self._on_command()
        return req

    async def deny(self, who: Identity, rid: str, reason: str) -> RollbackRequest:
        """Deny a pending request."""
        async with self._locks.hold("request:" + rid):
            now = self._clock_ms()
            req = deny(self.get(rid), who, self.policy, now, reason)
            await self._commit(req, "denied", now, actor=who.id)
        return req

    async def expire_due(self) -> list[RollbackRequest]:
        """Write the expiry of every pending request past its deadline; return them."""
        now = self._clock_ms()
        expired: list[RollbackRequest] = []
        for current in self._requests.view.pending():
            if current.status_at(now) != "expired":
                continue
            async with self._locks.hold("request:" + current.id):
                latest = self._requests.view.get(current.id)
                req = expire(latest, now) if latest is not None else None
                if req is None:
                    continue
                # Outputs dated at the deadline: two replicas write identical records.
                await self._commit(req, "expired", req.expires_at_ms, actor="guardian")
                expired.append(req)
        return expired

    async def _commit(
        self,
        req: RollbackRequest,
        step: Step,
        now_ms: int,
        *,
        actor: str,
        command: RollbackCommand | None = None,
    ) -> None:
        outputs = step_outputs(req, step, now_ms=now_ms, actor=actor, command=command)
        try:
            # Outputs first: if the state write then fails, the request is still pending and a
            # retry re-sends the same ids; the other order could record an approval whose
            # command was never written.
            await self._outputs.write(outputs)
            await self._requests.put(req)
        except GuardianError as exc:
            log.error("manual_step_not_written", request_id=req.id, step=step, error=str(exc))
            raise ManualError(
                "unavailable", f"could not record the {step} step of {req.id} ({exc}); retry"
            ) from exc
        log.info(
            "manual_step",
            request_id=req.id,
            step=step,
            actor=actor,
            service=req.service,
            environment=req.environment,
            deploy_id=req.deploy.deploy_id,
            command_id=command.command_id if command else None,
        )

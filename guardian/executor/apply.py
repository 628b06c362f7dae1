"""One command on one target: read, check, plan, patch (again on a conflict), wait.

``apply_to_target`` is the whole policy of touching a workload:

1. read the workload (and, for a rollback, its ReplicaSets) and make a plan
   (``guardian.executor.plan``); a refusal patches nothing and is ``failed``;
2. send the plan's patches, each guarded by the ``resourceVersion`` just read
   or returned by the previous patch; a 409 Conflict (someone else wrote in
   between) or a transient API error starts again from step 1 on fresh state,
   at most ``conflict_retries`` times;
3. poll the workload until its rollout is done, failed
   (``ProgressDeadlineExceeded``) or ``converge_timeout_s`` ran out.

``resumed`` says the ledger found this command half-done after a restart
(the patch may have landed, its outcome was never recorded): a target that
already runs ``to_version`` is then not a precondition failure but this
command's own earlier patch, so the executor waits for it and reports
``rolled_back``. A stop request ends the wait early with ``interrupted``;
the command stays half-done in the ledger and is resumed by the next start.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import structlog

from guardian.executor.command import Command
from guardian.executor.kube import KubeApi, KubeError
from guardian.executor.plan import (
    Plan,
    Refusal,
    WaitFor,
    plan_command,
    progress,
    with_resource_version,
)
from guardian.executor.targets import Target

log = structlog.get_logger(__name__)

Status = Literal["rolled_back", "paused", "failed", "dry_run", "interrupted"]
FailCode = Literal[
    "precondition",
    "no_revision",
    "unsupported",
    "conflict",
    "kube_error",
    "timeout",
    "progress_deadline",
    "no_target",
]


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    """How patiently and how really to apply."""

    dry_run: bool = False
    conflict_retries: int = 5
    converge_timeout_s: float = 300.0
    poll_interval_s: float = 1.0


@dataclass(frozen=True, slots=True)
class TargetOutcome:
    """What became of one target."""

    target: str
    kind: str
    status: Status
    reason: str
    code: FailCode | Literal["applied", "already_applied", "dry_run", "interrupted"] = "applied"
    patches: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    gitops: str | None = None
    converge_s: float | None = None
    conflicts: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The outcome as JSON, for the ledger and the audit record."""
        return {
            "target": self.target,
            "kind": self.kind,
            "status": self.status,
            "code": self.code,
            "reason": self.reason,
            "patches": list(self.patches),
            "notes": list(self.notes),
            "gitops": self.gitops,
            "converge_s": self.converge_s,
            "conflicts": self.conflicts,
        }


@dataclass
class _Attempt:
    conflicts: int = 0
    patched: list[str] = field(default_factory=list)


async def apply_to_target(
    api: KubeApi,
    command: Command,
    target: Target,
    options: ApplyOptions,
    *,
    resumed: bool = False,
    stop: asyncio.Event | None = None,
) -> TargetOutcome:
    """Apply ``command`` to ``target`` and wait for the rollout; never raises ``KubeError``."""
    stop = stop or asyncio.Event()
    attempt = _Attempt()
    bound = log.bind(command_id=command.command_id, target=target.ref, action=command.action)
    while True:
        try:
            decided, version = await _plan(api, command, target)
        except KubeError as exc:
            return _failed(target, "kube_error", str(exc), attempt)
        if isinstance(decided, Refusal):
            return await _refused(api, target, decided, options, stop, attempt, resumed=resumed)
        if options.dry_run:
            bound.info(
                "executor_dry_run",
                patches=[p.what for p in decided.patches],
                notes=list(decided.notes),
            )
            return TargetOutcome(
                target.ref,
                target.kind,
                "dry_run",
                "dry run: nothing patched",
                code="dry_run",
                patches=tuple(p.what for p in decided.patches),
                notes=decided.notes,
                gitops=decided.gitops,
            )
        try:
            await _send(api, target, decided, version, attempt)
        except KubeError as exc:
            if (exc.conflict or exc.retriable) and attempt.conflicts < options.conflict_retries:
                attempt.conflicts += 1
                bound.warning("executor_patch_retry", error=str(exc), attempt=attempt.conflicts)
                await asyncio.sleep(0 if exc.conflict else min(0.2 * 2**attempt.conflicts, 5.0))
                continue
            code: FailCode = "conflict" if exc.conflict else "kube_error"
            return _failed(target, code, str(exc), attempt)
        bound.info("executor_patched", patches=attempt.patched, conflicts=attempt.conflicts)
        outcome = await _wait(api, target, decided.wait_for, options, stop, attempt)
        return replace(outcome, notes=decided.notes, gitops=decided.gitops)


async def _refused(
    api: KubeApi,
    target: Target,
    refusal: Refusal,
    options: ApplyOptions,
    stop: asyncio.Event,
    attempt: _Attempt,
    *,
    resumed: bool,
) -> TargetOutcome:
    if not (resumed and refusal.at_target):
        return _failed(target, refusal.code, refusal.reason, attempt)
    log.info("executor_resumed_at_target", target=target.ref, note="the earlier patch had landed")
    outcome = await _wait(api, target, "rollout", options, stop, attempt)
    if outcome.status != "rolled_back":
        return outcome
    reason = "found at to_version after a restart; " + outcome.reason
    return replace(outcome, code="already_applied", reason=reason)


async def _plan(api: KubeApi, command: Command, target: Target) -> tuple[Plan | Refusal, str]:
    """The plan on the workload as read now, and the resourceVersion it was made on."""
    obj = await api.get(target)
    replicasets = await api.replicasets(target, obj) if command.action == "rollback" else []
    version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
    return plan_command(command, target, obj, replicasets), version


async def _send(api: KubeApi, target: Target, plan: Plan, version: str, attempt: _Attempt) -> None:
    # Guarded by the version the plan was made on: a change since is a 409, and a new plan.
    for patch in plan.patches:
        result = await api.patch(target, with_resource_version(patch, version))
        version = str((result.get("metadata") or {}).get("resourceVersion", ""))
        attempt.patched.append(patch.what)


async def _wait(
    api: KubeApi,
    target: Target,
    wait_for: WaitFor,
    options: ApplyOptions,
    stop: asyncio.Event,
    attempt: _Attempt,
) -> TargetOutcome:
    started = time.monotonic()
    deadline = started + options.converge_timeout_s
    while True:
        try:
            state = progress(target.kind, wait_for, await api.get(target))
        except KubeError as exc:
            if not exc.retriable:
                return _failed(target, "kube_error", str(exc), attempt)
            state = None  # a transient error: read again at the next poll
        elapsed = round(time.monotonic() - started, 3)
        if state is not None and state.state == "done":
            status: Status = "paused" if wait_for == "pause" else "rolled_back"
            return TargetOutcome(
                target.ref,
                target.kind,
                status,
                state.detail,
                patches=tuple(attempt.patched),
                converge_s=elapsed,
                conflicts=attempt.conflicts,
            )
        if state is not None and state.state == "failed":
            return _failed(target, "progress_deadline", state.detail, attempt, converge_s=elapsed)
        if time.monotonic() >= deadline:
            detail = state.detail if state is not None else "no answer"
            reason = f"not converged after {options.converge_timeout_s:g}s: {detail}"
            return _failed(target, "timeout", reason, attempt, converge_s=elapsed)
        try:
            await asyncio.wait_for(stop.wait(), options.poll_interval_s)
        except TimeoutError:
            continue
        return TargetOutcome(
            target.ref,
            target.kind,
            "interrupted",
            "stopped while waiting for the rollout; resumed at the next start",
            code="interrupted",
            patches=tuple(attempt.patched),
            conflicts=attempt.conflicts,
        )


def _failed(
    target: Target, code: FailCode, reason: str, attempt: _Attempt, converge_s: float | None = None
) -> TargetOutcome:
    return TargetOutcome(
        target.ref,
        target.kind,
        "failed",
        reason,
        code=code,
        patches=tuple(attempt.patched),
        converge_s=converge_s,
        conflicts=attempt.conflicts,
    )

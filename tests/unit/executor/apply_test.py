"""Applying one command to one target, against an in-memory ``KubeApi`` (the adapter's Protocol)."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from guardian.executor.apply import ApplyOptions, apply_to_target
from guardian.executor.command import Command
from guardian.executor.kube import KubeError
from guardian.executor.plan import Patch
from guardian.executor.targets import Target

TARGET = Target(
    service="checkout",
    environment="production",
    namespace="shop",
    kind="Deployment",
    name="checkout",
)
FAST = ApplyOptions(poll_interval_s=0.001, converge_timeout_s=1.0)


def _template(version: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app.kubernetes.io/version": version}},
        "spec": {"containers": []},
    }


@dataclass
class MemoryKube:
    """A Deployment in memory: patches apply at once; the status converges after ``polls`` reads."""

    version: str = "2.4.1"
    polls: int = 1
    patch_errors: list[KubeError] = field(default_factory=list)
    get_errors: list[KubeError] = field(default_factory=list)
    deadline: bool = False
    sent: list[Patch] = field(default_factory=list)
    _reads_since_patch: int = 0
    _rv: int = 1

    def _object(self) -> dict[str, Any]:
        done = self._reads_since_patch >= self.polls
        status: dict[str, Any] = {"observedGeneration": 1}
        if done:
            status.update(replicas=1, updatedReplicas=1, availableReplicas=1)
        if self.deadline:
            status["conditions"] = [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]
        return {
            "metadata": {"uid": "u", "generation": 1, "resourceVersion": str(self._rv)},
            "spec": {"replicas": 1, "template": _template(self.version)},
            "status": status,
        }

    async def get(self, target: Target) -> dict[str, Any]:
        if self.get_errors:
            raise self.get_errors.pop(0)
        self._reads_since_patch += 1
        return self._object()

    async def replicasets(self, target: Target, owner: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "metadata": {
                    "name": f"rs-{v}",
                    "annotations": {"deployment.kubernetes.io/revision": str(n)},
                    "ownerReferences": [{"uid": "u"}],
                },
                "spec": {"template": _template(v)},
            }
            for n, v in enumerate(("2.4.0", "2.4.1"), start=1)
        ]

    async def patch(self, target: Target, patch: Patch) -> dict[str, Any]:
        if self.patch_errors:
            raise self.patch_errors.pop(0)
        self.sent.append(copy.deepcopy(patch))
        self.version = patch.body[1]["value"]["metadata"]["labels"]["app.kubernetes.io/version"]
        self._rv += 1
        self._reads_since_patch = 0
        return self._object()


def _command() -> Command:
    return Command(
        action="rollback",
        command_id="rb-1",
        deploy_id="d-1",
        service="checkout",
        environment="production",
        regions=(),
        from_version="2.4.1",
        to_version="2.4.0",
        strategy="rolling",
        component="application",
        reason="bad",
        rule=None,
        signature=None,
        payload={},
    )


async def test_a_rollback_is_patched_and_waited_for() -> None:
    """One guarded patch, then polls until the replicas are updated and available."""
    kube = MemoryKube(polls=3)
    outcome = await apply_to_target(kube, _command(), TARGET, FAST)
    assert (outcome.status, outcome.code) == ("rolled_back", "applied")
    assert outcome.converge_s is not None
    (patch,) = kube.sent
    assert patch.body[0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": "1"}
    assert outcome.to_dict()["patches"] == [patch.what]


async def test_conflicts_and_transient_errors_are_retried_then_given_up() -> None:
    """409 and 503 are retried on fresh state up to conflict_retries; then the target fails."""
    kube = MemoryKube(
        patch_errors=[KubeError("conflict", status=409), KubeError("busy", status=503)]
    )
    outcome = await apply_to_target(kube, _command(), TARGET, FAST)
    assert (outcome.status, outcome.conflicts) == ("rolled_back", 2)
    stubborn = MemoryKube(patch_errors=[KubeError("conflict", status=409)] * 3)
    options = ApplyOptions(conflict_retries=2, poll_interval_s=0.001)
    failed = await apply_to_target(stubborn, _command(), TARGET, options)
    assert (failed.status, failed.code, failed.conflicts) == ("failed", "conflict", 2)
    assert stubborn.sent == []


async def test_a_refused_patch_or_read_fails_the_target_at_once() -> None:
    """403 is not retried; a read that fails before planning is a kube_error too."""
    forbidden = MemoryKube(patch_errors=[KubeError("forbidden", status=403)])
    outcome = await apply_to_target(forbidden, _command(), TARGET, FAST)
    assert (outcome.status, outcome.code) == ("failed", "kube_error")
    unreadable = MemoryKube(get_errors=[KubeError("gone", status=404)])
    outcome = await apply_to_target(unreadable, _command(), TARGET, FAST)
    assert (outcome.code, outcome.reason) == ("kube_error", "gone")


async def test_a_transient_read_while_waiting_is_read_again() -> None:
    """A 503 during the wait is one missed poll, not a failure."""
    kube = MemoryKube(polls=2)
    original_patch = kube.patch

    async def patch_then_fail_reads(target: Target, patch: Patch) -> dict[str, Any]:
        result = await original_patch(target, patch)
        kube.get_errors.append(KubeError("busy", status=503))
        return result

    kube.patch = patch_then_fail_reads  # type: ignore[method-assign]
    outcome = await apply_to_target(kube, _command(), TARGET, FAST)
    assert outcome.status == "rolled_back"


async def test_a_read_refused_while_waiting_fails_the_target() -> None:
    """A 403 during the wait is not waited out."""
    kube = MemoryKube(polls=5)
    original_patch = kube.patch

    async def patch_then_forbid(target: Target, patch: Patch) -> dict[str, Any]:
        result = await original_patch(target, patch)
        kube.get_errors.append(KubeError("forbidden", status=403))
        return result

    kube.patch = patch_then_forbid  # type: ignore[method-assign]
    outcome = await apply_to_target(kube, _command(), TARGET, FAST)
    assert (outcome.status, outcome.code) == ("failed", "kube_error")
    assert outcome.patches


@pytest.mark.parametrize(
    ("kube", "code"),
    [(MemoryKube(polls=10**9), "timeout"), (MemoryKube(deadline=True), "progress_deadline")],
)
async def test_a_rollout_that_does_not_finish_fails(kube: MemoryKube, code: str) -> None:
    """The timeout or ProgressDeadlineExceeded ends the wait with failed; the patch stays listed."""
    options = ApplyOptions(poll_interval_s=0.001, converge_timeout_s=0.05)
    outcome = await apply_to_target(kube, _command(), TARGET, options)
    assert (outcome.status, outcome.code) == ("failed", code)
    assert len(outcome.patches) == 1


async def test_dry_run_plans_without_patching() -> None:
    """The plan is reported as what would be done; nothing is sent."""
    kube = MemoryKube()
    outcome = await apply_to_target(kube, _command(), TARGET, ApplyOptions(dry_run=True))
    assert (outcome.status, kube.sent) == ("dry_run", [])
    assert "undo to revision 1" in outcome.patches[0]


async def test_a_stop_request_interrupts_the_wait() -> None:
    """Draining does not wait minutes for a rollout: the target is left interrupted."""
    stop = asyncio.Event()
    stop.set()
    outcome = await apply_to_target(
        MemoryKube(polls=10**9), _command(), TARGET, ApplyOptions(poll_interval_s=5), stop=stop
    )
    assert (outcome.status, outcome.code) == ("interrupted", "interrupted")


async def test_a_resumed_command_whose_patch_landed_is_not_patched_again() -> None:
    """Half-done in the ledger, target already on to_version: wait, report already_applied."""
    kube = MemoryKube(version="2.4.0", polls=0)
    outcome = await apply_to_target(kube, _command(), TARGET, FAST, resumed=True)
    assert (outcome.status, outcome.code) == ("rolled_back", "already_applied")
    assert kube.sent == []
    fresh = await apply_to_target(MemoryKube(version="2.4.0"), _command(), TARGET, FAST)
    assert (fresh.status, fresh.code) == ("failed", "precondition")
    stuck = MemoryKube(version="2.4.0", deadline=True)
    outcome = await apply_to_target(stuck, _command(), TARGET, FAST, resumed=True)
    assert (outcome.status, outcome.code) == ("failed", "progress_deadline")

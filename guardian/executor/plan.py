"""What to patch for a command, and whether a rollout has converged: pure functions on dicts.

Nothing here does I/O: it takes the workload and its ReplicaSets as the
Kubernetes API returned them (plain dicts) and returns a ``Plan`` (the
patches to send) or a ``Refusal`` (why nothing may be patched), and reads a
workload's status as ``Progress``. ``guardian.executor.apply`` does the I/O.

Rules, by target kind:

- **Precondition** (rollbacks): the pod template runs the command's
  ``from_version`` (see ``template_version``); otherwise nothing is patched.
- **Deployment, rollback**: the pod template of the newest ReplicaSet owned by
  the Deployment whose template runs ``to_version`` (with ``to_version`` null:
  the newest one running anything else, as a bare ``kubectl rollout undo``),
  without its ``pod-template-hash`` label, replaces ``spec.template`` (a JSON
  patch, as ``kubectl rollout undo --to-revision`` sends); a paused Deployment
  is resumed by the same patch, or it would never roll.
- **Rollout, rollback**: mid-update (``status.currentPodHash`` is not
  ``status.stableRS``), ``status.abort: true`` on the status subresource (as
  ``kubectl argo rollouts abort``), then the stable ReplicaSet's template
  replaces ``spec.template`` so the update is not retried. Fully promoted
  (the bad version is stable), the template of the ReplicaSet running
  ``to_version`` replaces it. Argo CD-managed Rollouts (its instance label or
  tracking-id annotation) only get the abort mid-update, since self-heal
  would revert an undo; a promoted one still gets the undo, and the outcome
  says it may be reverted.
- **pause**, both kinds: ``spec.paused: true``. No version precondition
  (pause commands carry no versions, and pausing is always safe).

Every patch carries the ``resourceVersion`` the plan was made from
(``with_resource_version``), so the API server answers 409 Conflict when the
workload changed in between, and the plan is made again on fresh state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from guardian.executor.command import Command
from guardian.executor.targets import Target

PatchType = Literal["json", "merge", "strategic"]
WaitFor = Literal["rollout", "abort", "pause"]

DEPLOYMENT_HASH_LABEL = "pod-template-hash"
ROLLOUT_HASH_LABEL = "rollouts-pod-template-hash"
DEPLOYMENT_REVISION = "deployment.kubernetes.io/revision"
ROLLOUT_REVISION = "rollout.argoproj.io/revision"
ARGOCD_LABEL = "argocd.argoproj.io/instance"
ARGOCD_ANNOTATION = "argocd.argoproj.io/tracking-id"


@dataclass(frozen=True, slots=True)
class Patch:
    """One patch of the workload (or its status subresource)."""

    what: str  # for logs and reports: "undo to revision 3 (2.4.0)"
    patch_type: PatchType
    body: Any
    subresource: Literal["", "status"] = ""


@dataclass(frozen=True, slots=True)
class Plan:
    """The patches to send, in order, and what finishing looks like."""

    patches: tuple[Patch, ...]
    wait_for: WaitFor
    notes: tuple[str, ...] = ()
    gitops: str | None = None  # the Argo CD marker that names the managing Application


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why nothing is patched. ``at_target``: the target already runs ``to_version``."""

    code: Literal["precondition", "no_revision", "unsupported"]
    reason: str
    at_target: bool = False


@dataclass(frozen=True, slots=True)
class Progress:
    """How a rollout stands: done, failed (with why) or still going."""

    state: Literal["done", "failed", "waiting"]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Revision:
    """A ReplicaSet reduced to what a rollback needs."""

    name: str
    number: int
    version: str | None
    template: dict[str, Any] = field(hash=False)
    pod_hash: str | None = None


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def image_tag(image: str) -> str | None:
    """The tag of an image reference (``reg:5000/app:2.4.1`` → ``2.4.1``); None for a digest."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if "@" in image and ":" not in last:
        return None
    return last.rsplit(":", 1)[1] if ":" in last else None


def template_version(template: dict[str, Any], target: Target) -> str | None:
    """The version a pod template runs, by the target's ``version_from`` rule."""
    labels = _get(template, "metadata", "labels") or {}
    label = labels.get(target.version_label)
    if target.version_from == "label" or (target.version_from == "auto" and label):
        return str(label) if label else None
    containers = _get(template, "spec", "containers") or []
    chosen = next(
        (c for c in containers if target.container is None or c.get("name") == target.container),
        None,
    )
    image = chosen.get("image") if chosen else None
    return image_tag(image) if isinstance(image, str) else None


def gitops_marker(obj: dict[str, Any]) -> str | None:
    """The Argo CD label or annotation that says an Application manages this object."""
    labels = _get(obj, "metadata", "labels") or {}
    annotations = _get(obj, "metadata", "annotations") or {}
    if ARGOCD_ANNOTATION in annotations:
        return f"{ARGOCD_ANNOTATION}={annotations[ARGOCD_ANNOTATION]}"
    if ARGOCD_LABEL in labels:
        return f"{ARGOCD_LABEL}={labels[ARGOCD_LABEL]}"
    return None


def revisions(
    owner: dict[str, Any], replicasets: list[dict[str, Any]], target: Target
) -> list[Revision]:
    """The owner's ReplicaSets, newest revision first."""
    uid = _get(owner, "metadata", "uid")
    rollout = target.kind == "Rollout"
    annotation = ROLLOUT_REVISION if rollout else DEPLOYMENT_REVISION
    hash_label = ROLLOUT_HASH_LABEL if rollout else DEPLOYMENT_HASH_LABEL
    found = []
    for rs in replicasets:
        owners = _get(rs, "metadata", "ownerReferences") or []
        if uid is not None and not any(ref.get("uid") == uid for ref in owners):
            continue
        template = _get(rs, "spec", "template") or {}
        number = str((_get(rs, "metadata", "annotations") or {}).get(annotation, "0"))
        labels = _get(template, "metadata", "labels") or {}
        found.append(
            Revision(
                name=str(_get(rs, "metadata", "name")),
                number=int(number) if number.isdigit() else 0,
                version=template_version(template, target),
                template=template,
                pod_hash=labels.get(hash_label),
            )
        )
    return sorted(found, key=lambda r: r.number, reverse=True)


def clean_template(template: dict[str, Any], hash_label: str) -> dict[str, Any]:
    """A ReplicaSet's template as a workload template: without the pod hash label."""
    metadata = dict(template.get("metadata") or {})
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k != hash_label}
    metadata["labels"] = labels
    metadata.pop("creationTimestamp", None)
    return {**template, "metadata": metadata}


def _undo(revision: Revision, hash_label: str, *, resume: bool) -> Patch:
    ops: list[dict[str, Any]] = [
        {
            "op": "replace",
            "path": "/spec/template",
            "value": clean_template(revision.template, hash_label),
        }
    ]
    if resume:
        ops.append({"op": "replace", "path": "/spec/paused", "value": False})
    return Patch(
        what=f"undo to revision {revision.number} ({revision.version}, {revision.name})",
        patch_type="json",
        body=ops,
    )


def _precondition(command: Command, running: str | None) -> Refusal | None:
    if running == command.from_version:
        return None
    at_target = running is not None and running == command.to_version
    return Refusal(
        "precondition",
        f"the target runs {running or 'an unknown version'}, not from_version "
        f"{command.from_version}: nothing patched"
        + (" (it already runs to_version)" if at_target else ""),
        at_target=at_target,
    )


def _pick(revs: list[Revision], command: Command) -> Revision | None:
    if command.to_version is not None:
        return next((r for r in revs if r.version == command.to_version), None)
    return next((r for r in revs if r.version != command.from_version), None)


def plan_command(
    command: Command, target: Target, obj: dict[str, Any], replicasets: list[dict[str, Any]]
) -> Plan | Refusal:
    """What to do to ``obj`` (the target's workload) for ``command``."""
    if command.action == "pause":
        return Plan((Patch("pause", "merge", {"spec": {"paused": True}}),), wait_for="pause")
    running = template_version(_get(obj, "spec", "template") or {}, target)
    refused = _precondition(command, running)
    if refused is not None:
        return refused
    revs = revisions(obj, replicasets, target)
    if target.kind == "Deployment":
        chosen = _pick(revs, command)
        if chosen is None:
            return _no_revision(command)
        resume = bool(_get(obj, "spec", "paused"))
        return Plan(
            (_undo(chosen, DEPLOYMENT_HASH_LABEL, resume=resume),),
            wait_for="rollout",
            notes=("the paused Deployment is resumed to roll back",) if resume else (),
        )
    return _plan_rollout(command, obj, revs)


def _no_revision(command: Command) -> Refusal:
    wanted = command.to_version or "an earlier version"
    return Refusal("no_revision", f"no ReplicaSet of the target runs {wanted}: nothing patched")


def _plan_rollout(command: Command, obj: dict[str, Any], revs: list[Revision]) -> Plan | Refusal:
    gitops = gitops_marker(obj)
    stable = _get(obj, "status", "stableRS")
    current = _get(obj, "status", "currentPodHash")
    abort = Patch("abort", "merge", {"status": {"abort": True}}, subresource="status")
    if stable and current and stable != current:
        stable_rev = next((r for r in revs if r.pod_hash == stable), None)
        if gitops is not None:
            note = (
                f"managed by Argo CD ({gitops}): aborted only, the stable version serves all "
                "traffic; an undo would be reverted by self-heal, revert the change in Git"
            )
            return Plan((abort,), wait_for="abort", notes=(note,), gitops=gitops)
        if stable_rev is None:
            return Plan(
                (abort,), wait_for="abort", notes=("the stable ReplicaSet is gone: aborted only",)
            )
        return Plan(
            (abort, _undo(stable_rev, ROLLOUT_HASH_LABEL, resume=False)), wait_for="rollout"
        )
    chosen = _pick(revs, command)
    if chosen is None:
        return _no_revision(command)
    notes = (
        (
            f"managed by Argo CD ({gitops}): self-heal, if on, reverts this undo; revert the "
            "change in Git",
        )
        if gitops
        else ()
    )
    resume = bool(_get(obj, "spec", "paused"))
    return Plan(
        (_undo(chosen, ROLLOUT_HASH_LABEL, resume=resume),),
        wait_for="rollout",
        notes=notes,
        gitops=gitops,
    )


def with_resource_version(patch: Patch, resource_version: str) -> Patch:
    """The patch guarded by ``resourceVersion``: 409 Conflict if the object changed since."""
    if patch.patch_type == "json":
        guard = {"op": "replace", "path": "/metadata/resourceVersion", "value": resource_version}
        body: Any = [guard, *patch.body]
    else:
        metadata = {**patch.body.get("metadata", {}), "resourceVersion": resource_version}
        body = {**patch.body, "metadata": metadata}
    return Patch(patch.what, patch.patch_type, body, patch.subresource)


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    conditions = _get(obj, "status", "conditions") or []
    return next((c for c in conditions if c.get("type") == kind), {})


def progress(kind: str, wait_for: WaitFor, obj: dict[str, Any]) -> Progress:
    """How the workload's rollout stands, read as ``kubectl rollout status`` does."""
    generation = _get(obj, "metadata", "generation")
    observed = _get(obj, "status", "observedGeneration")
    seen = generation is None or (observed is not None and str(observed) == str(generation))
    if kind == "Deployment" and observed is not None and str(generation).isdigit():
        seen = int(observed) >= int(generation)
    if _condition(obj, "Progressing").get("reason") == "ProgressDeadlineExceeded":
        return Progress(
            "failed",
            "ProgressDeadlineExceeded: " + str(_condition(obj, "Progressing").get("message", "")),
        )
    if not seen:
        return Progress("waiting", "the controller has not seen the change yet")
    if wait_for == "pause":
        return Progress("done", "paused")
    if kind == "Rollout":
        return _rollout_progress(wait_for, obj)
    return _deployment_progress(obj)


def _deployment_progress(obj: dict[str, Any]) -> Progress:
    wanted = _get(obj, "spec", "replicas")
    wanted = 1 if wanted is None else int(wanted)
    status = obj.get("status") or {}
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < wanted:
        return Progress("waiting", f"{updated} of {wanted} replicas updated")
    if total > updated:
        return Progress("waiting", f"{total - updated} old replicas pending termination")
    if available < updated:
        return Progress("waiting", f"{available} of {updated} updated replicas available")
    return Progress("done", f"{updated} replicas updated and available")


def _rollout_progress(wait_for: WaitFor, obj: dict[str, Any]) -> Progress:
    status = obj.get("status") or {}
    phase = status.get("phase")
    if wait_for == "abort":
        if status.get("abortedAt") or (
            phase == "Degraded" and "abort" in str(status.get("message", "")).lower()
        ):
            return Progress("done", "aborted: the stable version serves all traffic")
        return Progress("waiting", f"phase {phase}")
    if phase == "Healthy" and status.get("stableRS") == status.get("currentPodHash"):
        return Progress("done", "healthy on the stable ReplicaSet")
    return Progress("waiting", f"phase {phase}")

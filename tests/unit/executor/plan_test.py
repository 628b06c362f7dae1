"""Planning: the version a template runs, the precondition, and what is patched per kind."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from guardian.executor.command import Action, Command
from guardian.executor.plan import (
    Patch,
    Plan,
    Refusal,
    clean_template,
    image_tag,
    plan_command,
    progress,
    template_version,
    with_resource_version,
)
from guardian.executor.targets import Kind, Target


def _target(kind: Kind = "Deployment", **extra: Any) -> Target:
    return Target(
        service="checkout",
        environment="production",
        namespace="shop",
        kind=kind,
        name="checkout",
        **extra,
    )


def _command(
    action: Action = "rollback", from_version: str = "2.4.1", to_version: str | None = "2.4.0"
) -> Command:
    return Command(
        action=action,
        command_id="rb-1",
        deploy_id="d-1",
        service="checkout",
        environment="production",
        regions=("us-east",),
        from_version=from_version if action == "rollback" else None,
        to_version=to_version if action == "rollback" else None,
        strategy="canary",
        component="application",
        reason="bad",
        rule="r",
        signature=None,
        payload={},
    )


def _template(version: str, *, label: bool = True, hash_label: str = "") -> dict[str, Any]:
    labels = {"app": "checkout"}
    if label:
        labels["app.kubernetes.io/version"] = version
    if hash_label:
        labels[hash_label] = f"h-{version}"
    return {
        "metadata": {"labels": labels},
        "spec": {
            "containers": [
                {"name": "app", "image": f"registry.example.com:5000/checkout:{version}"},
                {"name": "proxy", "image": "envoy:v1.31"},
            ]
        },
    }


def _workload(kind: str, version: str, **status: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {
            "name": "checkout",
            "uid": "u-1",
            "generation": 3,
            "resourceVersion": "7",
            "labels": {},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": _template(version),
        },
        "status": status,
    }


def _rs(
    version: str, revision: int, *, kind: str = "Deployment", owner: str = "u-1"
) -> dict[str, Any]:
    rollout = kind == "Rollout"
    hash_label = "rollouts-pod-template-hash" if rollout else "pod-template-hash"
    annotation = "rollout.argoproj.io/revision" if rollout else "deployment.kubernetes.io/revision"
    return {
        "metadata": {
            "name": f"checkout-{version}",
            "annotations": {annotation: str(revision)},
            "ownerReferences": [{"uid": owner}],
        },
        "spec": {"template": _template(version, hash_label=hash_label)},
    }


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("checkout:2.4.1", "2.4.1"),
        ("registry.example.com:5000/shop/checkout:2.4.1", "2.4.1"),
        ("registry.example.com:5000/shop/checkout", None),
        ("checkout@sha256:abc", None),
        ("checkout:2.4.1@sha256:abc", "2.4.1"),
    ],
)
def test_image_tag(image: str, tag: str | None) -> None:
    """The tag is after the last colon of the last path part; a bare digest has none."""
    assert image_tag(image) == tag


@pytest.mark.parametrize(
    ("target", "label", "expected"),
    [
        ({}, True, "2.4.1"),  # auto: the label when present
        ({}, False, "2.4.1"),  # auto: else the first container's tag
        ({"version_from": "image", "container": "proxy"}, True, "v1.31"),
        ({"version_from": "label"}, False, None),
        ({"version_from": "image", "container": "missing"}, True, None),
    ],
)
def test_template_version_follows_the_targets_rule(
    target: dict[str, Any], label: bool, expected: str | None
) -> None:
    """``version_from`` picks the label or a container's image tag."""
    assert template_version(_template("2.4.1", label=label), _target(**target)) == expected


def test_a_deployment_rollback_restores_the_template_of_to_version() -> None:
    """The newest ReplicaSet of to_version, owned by the Deployment, without its hash label."""
    obj = _workload("Deployment", "2.4.1")
    replicasets = [_rs("2.4.0", 1), _rs("2.4.1", 2), _rs("2.4.0", 3, owner="someone-else")]
    plan = plan_command(_command(), _target(), obj, replicasets)
    assert isinstance(plan, Plan)
    (patch,) = plan.patches
    assert patch.patch_type == "json"
    assert patch.what == "undo to revision 1 (2.4.0, checkout-2.4.0)"
    value = patch.body[0]["value"]
    assert value["metadata"]["labels"] == {"app": "checkout", "app.kubernetes.io/version": "2.4.0"}
    assert plan.wait_for == "rollout"


def test_without_to_version_the_newest_other_revision_is_chosen() -> None:
    """to_version null: as a bare ``kubectl rollout undo``, the newest other revision."""
    obj = _workload("Deployment", "2.4.1")
    replicasets = [_rs("2.3.0", 1), _rs("2.4.0", 2), _rs("2.4.1", 3)]
    plan = plan_command(_command(to_version=None), _target(), obj, replicasets)
    assert isinstance(plan, Plan)
    assert "2.4.0" in plan.patches[0].what


def test_a_paused_deployment_is_resumed_by_its_rollback() -> None:
    """A paused Deployment would never roll: the same patch sets paused to false."""
    obj = _workload("Deployment", "2.4.1")
    obj["spec"]["paused"] = True
    plan = plan_command(_command(), _target(), obj, [_rs("2.4.0", 1)])
    assert isinstance(plan, Plan)
    assert plan.patches[0].body[-1] == {"op": "replace", "path": "/spec/paused", "value": False}
    assert plan.notes


@pytest.mark.parametrize(
    ("running", "at_target"),
    [("2.4.0", True), ("2.5.0", False)],
)
def test_the_precondition_refuses_a_target_not_on_from_version(
    running: str, at_target: bool
) -> None:
    """Nothing is planned when the target runs another version; to_version is flagged."""
    refused = plan_command(
        _command(), _target(), _workload("Deployment", running), [_rs("2.4.0", 1)]
    )
    assert isinstance(refused, Refusal)
    assert refused.code == "precondition"
    assert refused.at_target is at_target
    assert f"runs {running}, not from_version 2.4.1" in refused.reason


def test_no_revision_of_to_version_is_a_refusal() -> None:
    """Without a ReplicaSet of to_version there is nothing to go back to."""
    refused = plan_command(
        _command(), _target(), _workload("Deployment", "2.4.1"), [_rs("2.4.1", 2)]
    )
    assert isinstance(refused, Refusal)
    assert refused.code == "no_revision"


def test_pause_sets_spec_paused_without_a_precondition() -> None:
    """A pause is a merge patch of spec.paused, whatever version runs."""
    plan = plan_command(_command("pause"), _target("Rollout"), _workload("Rollout", "9.9.9"), [])
    assert plan == Plan((Patch("pause", "merge", {"spec": {"paused": True}}),), wait_for="pause")


def _canary(**metadata: Any) -> dict[str, Any]:
    obj = _workload(
        "Rollout", "2.4.1", stableRS="h-2.4.0", currentPodHash="h-2.4.1", phase="Paused"
    )
    obj["metadata"].update(metadata)
    return obj


def test_a_rollout_mid_canary_is_aborted_then_undone_to_the_stable_template() -> None:
    """Abort on the status subresource first, then the stable ReplicaSet's template."""
    revs = [_rs("2.4.0", 1, kind="Rollout"), _rs("2.4.1", 2, kind="Rollout")]
    plan = plan_command(_command(), _target("Rollout"), _canary(), revs)
    assert isinstance(plan, Plan)
    abort, undo = plan.patches
    assert (abort.subresource, abort.patch_type, abort.body) == (
        "status",
        "merge",
        {"status": {"abort": True}},
    )
    assert "rollouts-pod-template-hash" not in str(undo.body)
    assert "2.4.0" in undo.what
    assert plan.gitops is None


@pytest.mark.parametrize(
    "metadata",
    [
        {"labels": {"argocd.argoproj.io/instance": "shop"}},
        {
            "annotations": {
                "argocd.argoproj.io/tracking-id": "shop:argoproj.io/Rollout:shop/checkout"
            }
        },
    ],
)
def test_a_gitops_rollout_mid_canary_is_only_aborted(metadata: dict[str, Any]) -> None:
    """Argo CD would revert an undo: abort only, and the outcome says why."""
    revs = [_rs("2.4.0", 1, kind="Rollout")]
    plan = plan_command(_command(), _target("Rollout"), _canary(**metadata), revs)
    assert isinstance(plan, Plan)
    assert [p.what for p in plan.patches] == ["abort"]
    assert plan.wait_for == "abort"
    assert plan.gitops is not None
    assert "self-heal" in plan.notes[0]


def test_a_rollout_whose_stable_replicaset_is_gone_is_only_aborted() -> None:
    """No stable template to go back to: the abort alone, said so."""
    plan = plan_command(
        _command(), _target("Rollout"), _canary(), [_rs("2.4.1", 2, kind="Rollout")]
    )
    assert isinstance(plan, Plan)
    assert [p.what for p in plan.patches] == ["abort"]
    assert "gone" in plan.notes[0]


def test_a_promoted_rollout_is_undone_to_to_version_and_gitops_is_reported() -> None:
    """The bad version is stable already: undo to to_version; Argo CD management is noted."""
    obj = _workload("Rollout", "2.4.1", stableRS="h-2.4.1", currentPodHash="h-2.4.1")
    obj["metadata"]["labels"] = {"argocd.argoproj.io/instance": "shop"}
    revs = [_rs("2.4.0", 1, kind="Rollout"), _rs("2.4.1", 2, kind="Rollout")]
    plan = plan_command(_command(), _target("Rollout"), obj, revs)
    assert isinstance(plan, Plan)
    assert [p.patch_type for p in plan.patches] == ["json"]
    assert plan.gitops == "argocd.argoproj.io/instance=shop"
    missing = plan_command(_command(), _target("Rollout"), obj, revs[1:])
    assert isinstance(missing, Refusal)


def test_every_patch_is_guarded_by_the_resource_version_it_was_planned_on() -> None:
    """JSON patches get a leading replace of resourceVersion; merge patches carry it in metadata."""
    json_patch = with_resource_version(
        Patch("undo", "json", [{"op": "replace", "path": "/x", "value": 1}]), "41"
    )
    assert json_patch.body[0] == {
        "op": "replace",
        "path": "/metadata/resourceVersion",
        "value": "41",
    }
    merge = with_resource_version(
        Patch("abort", "merge", {"status": {"abort": True}}, "status"), "42"
    )
    assert merge.body == {"status": {"abort": True}, "metadata": {"resourceVersion": "42"}}
    assert merge.subresource == "status"


def test_clean_template_drops_the_hash_label_and_leaves_the_input_alone() -> None:
    """The ReplicaSet's own template keeps its label; the copy lacks it."""
    template = _template("2.4.0", hash_label="pod-template-hash")
    template["metadata"]["creationTimestamp"] = None
    before = copy.deepcopy(template)
    cleaned = clean_template(template, "pod-template-hash")
    assert "pod-template-hash" not in cleaned["metadata"]["labels"]
    assert "creationTimestamp" not in cleaned["metadata"]
    assert template == before


def _deployment_status(**status: Any) -> dict[str, Any]:
    obj = _workload("Deployment", "2.4.0")
    obj["status"] = {"observedGeneration": 3, **status}
    return obj


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ({"observedGeneration": 2}, "waiting"),
        ({"updatedReplicas": 1, "replicas": 2}, "waiting"),
        ({"updatedReplicas": 2, "replicas": 3}, "waiting"),
        ({"updatedReplicas": 2, "replicas": 2, "availableReplicas": 1}, "waiting"),
        ({"updatedReplicas": 2, "replicas": 2, "availableReplicas": 2}, "done"),
        (
            {
                "conditions": [
                    {"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "slow"}
                ]
            },
            "failed",
        ),
    ],
)
def test_deployment_progress_reads_like_kubectl_rollout_status(
    status: dict[str, Any], state: str
) -> None:
    """Observed generation, then updated, old and available replicas; the deadline fails it."""
    assert progress("Deployment", "rollout", _deployment_status(**status)).state == state


def test_a_pause_is_done_once_the_controller_saw_it() -> None:
    """Only the observed generation matters for a pause."""
    assert progress("Deployment", "pause", _deployment_status()).state == "done"
    assert (
        progress("Deployment", "pause", _deployment_status(observedGeneration=1)).state == "waiting"
    )


@pytest.mark.parametrize(
    ("wait_for", "status", "state"),
    [
        ("rollout", {"phase": "Healthy", "stableRS": "a", "currentPodHash": "a"}, "done"),
        ("rollout", {"phase": "Progressing", "stableRS": "a", "currentPodHash": "b"}, "waiting"),
        ("abort", {"phase": "Degraded", "message": "RolloutAborted: aborted"}, "done"),
        ("abort", {"abortedAt": "2026-12-02T00:00:00Z"}, "done"),
        ("abort", {"phase": "Paused"}, "waiting"),
    ],
)
def test_rollout_progress(wait_for: str, status: dict[str, Any], state: str) -> None:
    """Healthy on the stable ReplicaSet finishes an undo; an abort finishes once recorded."""
    obj = _workload("Rollout", "2.4.0")
    obj["status"] = {"observedGeneration": "3", **status}
    assert progress("Rollout", wait_for, obj).state == state  # type: ignore[arg-type]

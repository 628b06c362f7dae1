"""The executor's manifest: least-privilege RBAC, a valid targets.yaml, wired like the daemon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
from ruamel.yaml import YAML

from guardian.executor.targets import parse_targets

MANIFEST = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "executor.yaml"


def _docs() -> dict[str, dict[str, Any]]:
    docs = [d for d in YAML(typ="safe").load_all(MANIFEST.read_text(encoding="utf-8")) if d]
    return {doc["kind"]: doc for doc in docs}


def test_every_resource_validates_strictly() -> None:
    """Each resource matches the offline Kubernetes schema, unknown fields rejected."""
    for doc in _docs().values():
        kubernetes_validate.validate(doc, "1.29", strict=True)


def test_the_role_grants_exactly_what_the_executor_touches() -> None:
    """Read and patch Deployments and Rollouts, read ReplicaSets, patch rollouts/status."""
    rules = {
        (group, resource): sorted(rule["verbs"])
        for rule in _docs()["Role"]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert rules == {
        ("apps", "deployments"): ["get", "list", "patch", "watch"],
        ("apps", "replicasets"): ["get", "list"],
        ("argoproj.io", "rollouts"): ["get", "list", "patch", "watch"],
        ("argoproj.io", "rollouts/status"): ["patch"],
    }
    binding = _docs()["RoleBinding"]
    assert binding["roleRef"]["name"] == _docs()["Role"]["metadata"]["name"]
    assert binding["subjects"][0]["name"] == _docs()["ServiceAccount"]["metadata"]["name"]


def test_the_deployment_runs_execute_with_the_targets_and_the_signing_key() -> None:
    """``execute`` with the ConfigMap's targets.yaml, the Secret's key and probes on its port."""
    docs = _docs()
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item for item in container["env"]}
    assert container["args"] == ["execute"]
    assert pod["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    assert docs["Deployment"]["spec"]["strategy"]["type"] == "Recreate"
    assert env["GUARDIAN_SIGNING_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "signing-key"
    targets = Path(env["GUARDIAN_TARGETS_FILE"]["value"])
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_map = volumes[mounts[str(targets.parent)]]["configMap"]["name"]
    assert config_map == docs["ConfigMap"]["metadata"]["name"]
    parse_targets(docs["ConfigMap"]["data"][targets.name], "executor.yaml")
    port = int(env["GUARDIAN_EXECUTOR_HTTP"]["value"].rpartition(":")[2])
    assert container["ports"][0]["containerPort"] == port
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True

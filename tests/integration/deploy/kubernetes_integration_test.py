"""The Kubernetes manifests validate offline against bundled schemas and wire the guardian."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = ROOT / "deploy" / "kubernetes"
# Oldest minor we promise to work on; the schemas ship inside kubernetes-validate.
KUBERNETES_VERSION = "1.29"
SECRET_ENV = {"GUARDIAN_SLACK_TOKEN", "GUARDIAN_SMTP_PASSWORD", "GUARDIAN_SIGNING_KEY"}

Manifest = dict[str, Any]


def _load(path: Path) -> list[Manifest]:
    return [doc for doc in YAML(typ="safe").load_all(path.read_text(encoding="utf-8")) if doc]


def _all_manifests() -> list[tuple[str, Manifest]]:
    return [
        (f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc)
        for path in sorted(MANIFESTS.glob("*.yaml"))
        for doc in _load(path)
    ]


def _one(file: str, kind: str) -> Manifest:
    docs = [doc for doc in _load(MANIFESTS / file) if doc["kind"] == kind]
    assert len(docs) == 1, f"{file} should hold one {kind}"
    return docs[0]


def _guardian(deployment: Manifest) -> Manifest:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "guardian")


def _env(container: Manifest) -> dict[str, Manifest]:
    return {item["name"]: item for item in container["env"]}


@pytest.mark.parametrize(("name", "manifest"), _all_manifests(), ids=lambda v: str(v)[:60])
def test_manifest_matches_the_kubernetes_schema(name: str, manifest: Manifest) -> None:
    """Each resource validates strictly (unknown fields rejected) against the offline schema."""
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_validator_rejects_a_misspelled_field() -> None:
    """The strict offline validator does catch a typo, so passing means something."""
    broken = copy.deepcopy(_one("standalone.yaml", "Deployment"))
    _guardian(broken)["readinesProbe"] = _guardian(broken).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("file", ["sidecar.yaml", "standalone.yaml"])
def test_guardian_container_is_wired_for_production(file: str) -> None:
    """Probes, resources, HTTP address, ConfigMap mounts and Secret-backed env are all set."""
    deployment = _one(file, "Deployment")
    container = _guardian(deployment)
    env = _env(container)

    port = env["GUARDIAN_HTTP"]["value"]
    assert port == "0.0.0.0:8080"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert ports[container[probe]["httpGet"]["port"]] == 8080

    resources = container["resources"]
    assert resources["requests"]["memory"] == "150Mi"
    assert resources["limits"]["memory"] == "256Mi"
    assert "cpu" in resources["requests"]

    for name in SECRET_ENV:
        assert "value" not in env[name], f"{name} must come from the Secret"
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "guardian-secrets"

    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    rules_volume = volumes[mounts[env["GUARDIAN_RULES"]["value"]]]
    assert rules_volume["configMap"]["name"] == "guardian-rules"
    subscriptions = Path(env["GUARDIAN_SUBSCRIPTIONS"]["value"])
    assert volumes[mounts[str(subscriptions.parent)]]["configMap"]["name"] == (
        "guardian-subscriptions"
    )
    tokens = Path(env["GUARDIAN_TOKENS_FILE"]["value"])
    assert volumes[mounts[str(tokens.parent)]]["secret"]["secretName"] == "guardian-secrets"

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert not container["image"].endswith(":latest")


def test_config_and_secret_keys_match_what_the_pods_read() -> None:
    """Every ConfigMap and Secret key the Deployments reference exists in the shipped resources."""
    config = {doc["metadata"]["name"]: doc for doc in _load(MANIFESTS / "config.yaml")}
    secret = _one("secret.example.yaml", "Secret")
    subscriptions = config["guardian-subscriptions"]["data"]
    assert "subscriptions.yaml" in subscriptions
    assert config["guardian-rules"]["data"]
    for file in ("sidecar.yaml", "standalone.yaml"):
        env = _env(_guardian(_one(file, "Deployment")))
        assert Path(env["GUARDIAN_SUBSCRIPTIONS"]["value"]).name in subscriptions
        for name in SECRET_ENV:
            assert env[name]["valueFrom"]["secretKeyRef"]["key"] in secret["stringData"]
        assert Path(env["GUARDIAN_TOKENS_FILE"]["value"]).name in secret["stringData"]


def test_sidecar_runs_beside_the_application() -> None:
    """The sidecar pod holds the application and the guardian, with a per-application group id."""
    deployment = _one("sidecar.yaml", "Deployment")
    names = [c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert len(names) == 2
    assert "guardian" in names
    group = _env(_guardian(deployment))["GUARDIAN_GROUP_ID"]["value"]
    assert group != "guardian", "a sidecar must not join the standalone group"


def test_standalone_replicas_share_one_group_and_survive_disruptions() -> None:
    """Three replicas in one consumer group, with a PodDisruptionBudget and a metrics Service."""
    deployment = _one("standalone.yaml", "Deployment")
    pdb = _one("standalone.yaml", "PodDisruptionBudget")
    service = _one("standalone.yaml", "Service")
    spec = deployment["spec"]
    labels = spec["template"]["metadata"]["labels"]

    assert spec["replicas"] == 3
    # Replicas (plus the rolling-update surge) must not exceed the default 4 partitions.
    assert spec["replicas"] + spec["strategy"]["rollingUpdate"]["maxSurge"] <= 4
    assert _env(_guardian(deployment))["GUARDIAN_GROUP_ID"]["value"] == "guardian"
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1
    assert service["spec"]["selector"].items() <= labels.items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {"http"}
    grace = spec["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > 20, "longer than GUARDIAN_GRACE_PERIOD_S so SIGTERM can drain"


def test_configmap_rules_and_subscriptions_are_valid() -> None:
    """The rule and subscription files shipped in the ConfigMaps pass the guardian's own checks."""
    from ruamel.yaml import YAML

    from guardian.engine import parse_rules
    from guardian.notify.subscriptions import parse_subscriptions

    config = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "config.yaml"
    checked = 0
    for doc in YAML(typ="safe").load_all(config.read_text()):
        for name, text in (doc.get("data") or {}).items():
            if name.startswith("subscriptions"):
                parse_subscriptions(text, name)
            else:
                parse_rules(text, name)
            checked += 1
    assert checked >= 2

"""deploy/compose.yaml wires Kafka (KRaft), Mosquitto, a mail catcher and the guardian."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "deploy" / "compose.yaml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    data = YAML(typ="safe").load(COMPOSE.read_text(encoding="utf-8"))
    result: dict[str, Any] = data["services"]
    return result


def _published(service: dict[str, Any]) -> dict[int, int]:
    """Container port → host port of a service's short-syntax port mappings."""
    ports = {}
    for spec in service.get("ports", []):
        host, _, container = str(spec).rpartition(":")
        ports[int(container.split("/")[0])] = int(host.rpartition(":")[2])
    return ports


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    result = {}
    for item in value.split(","):
        name, _, address = item.partition("://")
        host, _, port = address.rpartition(":")
        result[name] = (host, int(port))
    return result


def test_stack_has_the_four_services(services: dict[str, Any]) -> None:
    """Kafka from the apache/kafka image, Mosquitto, Mailpit and the guardian are all there."""
    assert set(services) >= {"kafka", "mosquitto", "mailpit", "guardian"}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:")
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")


def test_third_party_images_are_pinned(services: dict[str, Any]) -> None:
    """Every pulled image has an exact version tag, never `latest`."""
    for name, service in services.items():
        if "build" in service:
            continue
        image = service["image"]
        tag = image.rpartition(":")[2]
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image}"


def test_kafka_runs_in_kraft_mode(services: dict[str, Any]) -> None:
    """Kafka is its own controller (no ZooKeeper) with four partitions per new topic."""
    env = services["kafka"]["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env
    node, _, voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].partition("@")
    assert node == env["KAFKA_NODE_ID"]
    listeners = _listeners(env["KAFKA_LISTENERS"])
    assert voter == f"kafka:{listeners[env['KAFKA_CONTROLLER_LISTENER_NAMES']][1]}"
    assert env["KAFKA_NUM_PARTITIONS"] == "4"
    assert "healthcheck" in services["kafka"]


def test_guardian_reaches_every_service_where_it_listens(services: dict[str, Any]) -> None:
    """Bootstrap servers, MQTT URL and SMTP host/port point at the other services' listeners."""
    env = services["guardian"]["environment"]
    kafka_env = services["kafka"]["environment"]
    advertised = _listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    internal = advertised[kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    assert env["GUARDIAN_BOOTSTRAP_SERVERS"] == f"{internal[0]}:{internal[1]}"
    assert internal[0] == "kafka"

    mqtt = urlsplit(env["GUARDIAN_MQTT_URL"])
    assert (mqtt.scheme, mqtt.hostname) == ("mqtt", "mosquitto")
    conf = (COMPOSE.parent / "compose" / "mosquitto.conf").read_text(encoding="utf-8")
    assert f"listener {mqtt.port}" in conf
    assert "allow_anonymous true" in conf

    assert env["GUARDIAN_SMTP_HOST"] == "mailpit"
    assert int(env["GUARDIAN_SMTP_PORT"]) in _published(services["mailpit"])

    depends = services["guardian"]["depends_on"]
    assert set(depends) == {"kafka", "mosquitto", "mailpit"}
    assert depends["kafka"]["condition"] == "service_healthy"


def test_guardian_is_built_here_and_published(services: dict[str, Any]) -> None:
    """The guardian image builds from the repository's Dockerfile and its HTTP port is published."""
    guardian = services["guardian"]
    context = (COMPOSE.parent / guardian["build"]["context"]).resolve()
    assert (context / guardian["build"]["dockerfile"]).is_file()
    assert context == ROOT
    port = int(guardian["environment"]["GUARDIAN_HTTP"].rpartition(":")[2])
    assert guardian["environment"]["GUARDIAN_HTTP"].startswith("0.0.0.0:")
    assert port in _published(guardian)


def test_rules_and_subscriptions_are_mounted_where_the_guardian_reads(
    services: dict[str, Any],
) -> None:
    """GUARDIAN_RULES and GUARDIAN_SUBSCRIPTIONS name mount targets whose sources exist."""
    guardian = services["guardian"]
    env = guardian["environment"]
    mounts = {}
    for volume in guardian["volumes"]:
        source, target, *_ = volume.split(":")
        mounts[target] = COMPOSE.parent / source
    for key in ("GUARDIAN_RULES", "GUARDIAN_SUBSCRIPTIONS"):
        assert env[key] in mounts, key
        assert mounts[env[key]].exists(), mounts[env[key]]
    for service in services.values():
        for volume in service.get("volumes", []):
            assert (COMPOSE.parent / volume.split(":")[0]).exists(), volume


def test_no_secret_has_a_hard_coded_value(services: dict[str, Any]) -> None:
    """Secret-looking variables come from the caller's environment, at most with a demo default."""
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"TOKEN|PASSWORD|SIGNING_KEY|SECRET", key):
                assert str(value).startswith("${"), f"{name}: {key}"

"""Fixtures for the whole suite: real brokers, real Mosquitto and isolated settings per test.

Every test that needs Kafka runs twice: on Apache Kafka (a one-node KRaft
cluster started through ``scripts/kafka`` for the session, or the cluster
named by ``GUARDIAN_TEST_BOOTSTRAP_SERVERS``) and on the embedded Tansu
broker; ``tests/support/brokers.py`` says which kinds run. Every test gets
its own topic names and consumer group, so tests never see each other's
records on a shared broker. Mosquitto is started once per session on a free
port for the MQTT tests.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from guardian.config.settings import Settings
from guardian.kafka.embedded import broker_binary
from guardian.ports import free_port
from tests.support.brokers import EMBEDDED, KAFKA, KafkaCluster, TestBroker, broker_kinds
from tests.support.kafka import unique
from tests.support.mosquitto import Mosquitto

pytest_plugins = ["tests.support.watchdog"]

REPO = Path(__file__).resolve().parent.parent
_BROKER_KINDS, _BROKER_NOTICE = broker_kinds()


def pytest_report_header() -> list[str]:
    """Say on which brokers the suite runs, and why a kind is left out."""
    lines = [f"brokers: {', '.join(_BROKER_KINDS)}"]
    if _BROKER_NOTICE:
        lines.append(_BROKER_NOTICE)
    return lines


_SECONDS_BY_KIND: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add each phase's time to its broker kind (from the test id) or to "no broker"."""
    params = report.nodeid.rpartition("[")[2] if report.nodeid.endswith("]") else ""
    kind = next((k for k in _BROKER_KINDS if params.startswith(k)), "no broker")
    _SECONDS_BY_KIND[kind] = _SECONDS_BY_KIND.get(kind, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line: how long the tests of each broker kind took (setup, call and teardown)."""
    parts = [f"{kind} {seconds:.0f} s" for kind, seconds in sorted(_SECONDS_BY_KIND.items())]
    terminalreporter.write_line(f"time per broker: {', '.join(parts)}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses the broker runs once per broker kind (grouped by kind)."""
    if "broker" in metafunc.fixturenames:
        metafunc.parametrize("broker", _BROKER_KINDS, indirect=True, scope="session")


def _wait_listening(host: str, port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"broker at {host}:{port} did not start")


@pytest.fixture(scope="session")
def broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestBroker]:
    """The session's broker of one kind (the parameter)."""
    kind: str = request.param
    if kind == KAFKA:
        external = os.environ.get("GUARDIAN_TEST_BOOTSTRAP_SERVERS")
        if external:
            yield TestBroker(KAFKA, external)
            return
        cluster = KafkaCluster(tmp_path_factory.mktemp("kafka"))
        try:
            yield TestBroker(KAFKA, cluster.start())
        finally:
            cluster.stop(purge=True)
        return
    assert kind == EMBEDDED
    with _embedded_broker() as bootstrap:
        yield TestBroker(EMBEDDED, bootstrap)


@pytest.fixture(scope="session")
def kafka_bootstrap(broker: TestBroker) -> str:
    """Bootstrap servers of the session's broker."""
    return broker.bootstrap


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One Mosquitto for the session's MQTT tests, on a free port."""
    server = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@contextlib.contextmanager
def _embedded_broker() -> Iterator[str]:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening("127.0.0.1", port)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def settings_factory(broker: TestBroker, tmp_path: Path) -> Callable[..., Settings]:
    """Settings on the test broker with topics and group unique to this test."""
    prefix = unique("t")

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "bootstrap_servers": broker.bootstrap,
            "group_id": f"{prefix}-group",
            "deploy_topic": f"{prefix}.deploy.events",
            "metric_topic": f"{prefix}.metric.events",
            "command_topic": f"{prefix}.rollback.commands",
            "audit_topic": f"{prefix}.guardian.audit",
            "dlq_topic": f"{prefix}.guardian.dlq",
            "notification_topic": f"{prefix}.guardian.notifications",
            "state_topic": f"{prefix}.guardian.state",
            "incident_topic": f"{prefix}.guardian.incidents",
            "rules": REPO / "rules",
            "http": f"127.0.0.1:{free_port()}",
            # Short sessions: a group join on the embedded broker takes half of it.
            # Apache Kafka refuses sessions under group.min.session.timeout.ms (6 s).
            "session_timeout_ms": 6000 if broker.is_kafka else 2000,
            "heartbeat_interval_ms": 1000 if broker.is_kafka else 500,
            "fetch_max_wait_ms": 20,
            "grace_period_s": 10,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    """Each test starts with structlog's default configuration."""
    yield
    structlog.reset_defaults()

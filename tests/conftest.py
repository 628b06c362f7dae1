"""Fixtures for the whole suite: a real Kafka broker and isolated settings per test.

The broker is the embedded Tansu broker started once per session on a free
port, or a real Apache Kafka when ``GUARDIAN_TEST_BOOTSTRAP_SERVERS`` is set.
Every test gets its own topic names and consumer group, so tests never see
each other's records on a shared broker.
"""

from __future__ import annotations

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
from tests.support.kafka import unique

pytest_plugins = ["tests.support.watchdog"]

REPO = Path(__file__).resolve().parent.parent
_EXTERNAL_KAFKA = bool(os.environ.get("GUARDIAN_TEST_BOOTSTRAP_SERVERS"))


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
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of the test broker (embedded, or the real Kafka given by env)."""
    external = os.environ.get("GUARDIAN_TEST_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
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
def settings_factory(kafka_bootstrap: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings on the test broker with topics and group unique to this test."""
    prefix = unique("t")

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "bootstrap_servers": kafka_bootstrap,
            "group_id": f"{prefix}-group",
            "deploy_topic": f"{prefix}.deploy.events",
            "metric_topic": f"{prefix}.metric.events",
            "command_topic": f"{prefix}.rollback.commands",
            "audit_topic": f"{prefix}.guardian.audit",
            "dlq_topic": f"{prefix}.guardian.dlq",
            "notification_topic": f"{prefix}.guardian.notifications",
            "state_topic": f"{prefix}.guardian.state",
            "rules": REPO / "rules",
            "http": f"127.0.0.1:{free_port()}",
            # Short sessions: a group join on the embedded broker takes half of it.
            # Apache Kafka refuses sessions under group.min.session.timeout.ms (6 s).
            "session_timeout_ms": 6000 if _EXTERNAL_KAFKA else 2000,
            "heartbeat_interval_ms": 1000 if _EXTERNAL_KAFKA else 500,
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

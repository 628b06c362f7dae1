"""``guardian run`` on a secured Apache Kafka, configured through the environment as documented.

Through the SASL_SSL (SCRAM-SHA-512) listener and through the mutual-TLS
listener a bad deploy is rolled back and SIGTERM drains to exit 0. A wrong
password or a CA file that did not sign the brokers' certificates ends the
process with exit code 2 (a configuration problem) and one log line saying
what to fix, within seconds: no retry loop that would look like an outage.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.support import guardian_process, settings_env, wait_exit, wait_ready
from tests.integration.kafka.secure_cluster import (
    SCRAM_PASSWORD,
    Listener,
    SecureCluster,
    foreign_tls,
    secure_cluster,
    secure_settings,
)
from tests.support.events import deploy, traffic
from tests.support.kafka import produce_json, read_until

pytestmark = pytest.mark.kafka

WRONG_PASSWORD = "not-the-password"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    """A secure one-node cluster for this module."""
    with secure_cluster(tmp_path_factory.mktemp("secure-kafka-e2e")) as started:
        yield started


def _log(path: Path) -> list[dict[str, Any]]:
    """The JSON lines the process wrote."""
    lines = path.read_bytes().splitlines()
    return [orjson.loads(line) for line in lines if line.startswith(b"{")]


def _complaints(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Log lines at warning level or above."""
    return [e for e in entries if e.get("level") in ("warning", "error", "critical")]


@pytest.mark.parametrize("listener", ["sasl_ssl", "mtls"])
async def test_guardian_run_rolls_back_through_a_secured_listener(
    cluster: SecureCluster, listener: Listener, tmp_path: Path
) -> None:
    """The documented settings connect every client; a command is written, SIGTERM exits 0."""
    settings = secure_settings(cluster, listener)
    log_path = tmp_path / "g.log"
    with guardian_process(settings_env(settings), log_path=log_path) as process:
        await wait_ready(settings.http_port, process)
        await produce_json(cluster.plaintext, settings.deploy_topic, [deploy(deploy_id="d-tls")])
        await produce_json(
            cluster.plaintext,
            settings.metric_topic,
            traffic(seconds=150, error_rate=0.08, cohort="canary"),
        )
        commands = await read_until(cluster.plaintext, settings.command_topic, bool, timeout_s=30)
        process.send_signal(signal.SIGTERM)
        assert await wait_exit(process) == 0
    assert [c["deploy_id"] for c in commands] == ["d-tls"]
    entries = _log(log_path)
    assert "drained" in {e["event"] for e in entries}
    assert "producer_idempotence_off" not in {e["event"] for e in entries}
    assert SCRAM_PASSWORD not in log_path.read_text()


@pytest.mark.parametrize(
    ("listener", "mistake", "says"),
    [
        ("sasl_ssl", "password", "Kafka refused SASL authentication"),
        ("sasl_ssl", "ca", "certificate is not trusted"),
        ("mtls", "ca", "certificate is not trusted"),
    ],
)
async def test_a_refused_credential_exits_2_with_one_line(
    cluster: SecureCluster, listener: Listener, mistake: str, says: str, tmp_path: Path
) -> None:
    """Exit code 2 within seconds and exactly one complaint, the config_invalid line."""
    wrong: dict[str, Any] = (
        {"sasl_password": WRONG_PASSWORD}
        if mistake == "password"
        else {"ssl_cafile": foreign_tls(tmp_path / "foreign") / "ca.pem"}
    )
    settings = secure_settings(cluster, listener, connect_timeout_s=60, **wrong)
    log_path = tmp_path / "g.log"
    with guardian_process(settings_env(settings), log_path=log_path) as process:
        assert await wait_exit(process, timeout_s=20) == 2
    complaints = _complaints(_log(log_path))
    assert [c["event"] for c in complaints] == ["config_invalid"], complaints
    assert says in complaints[0]["error"]
    assert WRONG_PASSWORD not in log_path.read_text()

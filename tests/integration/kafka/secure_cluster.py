"""A secured Apache Kafka for tests: SASL_SSL (SCRAM-SHA-512) and mutual-TLS listeners.

``scripts/kafka start --secure`` adds both listeners beside the plaintext one,
which tests use to produce input and read output as an outside party would.
``secure_settings`` gives the guardian the settings an operator documents
for each listener; ``foreign_tls`` makes a CA (and a client certificate)
the brokers never trusted, for the refusal tests.

Only for modules whose tests need their own cluster (module-scoped
fixtures); skipped like the Kafka half of the suite when Java or Maven is
missing, a failure under ``CI=true``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from guardian.config.settings import Settings
from guardian.ports import free_port
from tests.support.brokers import KAFKA, KafkaCluster, broker_kinds
from tests.support.kafka import unique

REPO = Path(__file__).resolve().parents[3]
# The SCRAM user scripts/kafka creates on a secure cluster (a local test credential).
SCRAM_USER = "guardian"
SCRAM_PASSWORD = "guardian-scram-secret"

Listener = Literal["sasl_ssl", "mtls"]


@dataclass(frozen=True)
class SecureCluster:
    """Addresses of a running secure cluster and its certificates."""

    plaintext: str
    sasl_ssl: str
    mtls: str
    tls_dir: Path


@contextmanager
def secure_cluster(directory: Path) -> Iterator[SecureCluster]:
    """Start a one-node secure cluster in ``directory``; stop and purge it afterwards."""
    kinds, notice = broker_kinds()  # raises under CI=true when Java is missing
    if KAFKA not in kinds:
        pytest.skip(notice or "Apache Kafka is not among GUARDIAN_TEST_BROKERS")
    cluster = KafkaCluster(directory, secure=True)
    try:
        plaintext = cluster.start()
        nodes = cluster.nodes()
        yield SecureCluster(
            plaintext=plaintext,
            sasl_ssl=",".join(f"127.0.0.1:{n['sasl_ssl_port']}" for n in nodes),
            mtls=",".join(f"127.0.0.1:{n['ssl_port']}" for n in nodes),
            tls_dir=cluster.tls_dir,
        )
    finally:
        cluster.stop(purge=True)


def secure_settings(cluster: SecureCluster, listener: Listener, **overrides: Any) -> Settings:
    """The guardian's documented settings for one listener, with topics of its own."""
    prefix = unique("sec")
    tls = cluster.tls_dir
    security: dict[str, Any]
    if listener == "sasl_ssl":
        security = {
            "bootstrap_servers": cluster.sasl_ssl,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": SCRAM_USER,
            "sasl_password": SCRAM_PASSWORD,
            "ssl_cafile": tls / "ca.pem",
        }
    else:
        security = {
            "bootstrap_servers": cluster.mtls,
            "security_protocol": "SSL",
            "ssl_cafile": tls / "ca.pem",
            "ssl_certfile": tls / "client.pem",
            "ssl_keyfile": tls / "client.key",
        }
    values: dict[str, Any] = {
        **security,
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
        "session_timeout_ms": 6000,  # Apache Kafka's minimum
        "heartbeat_interval_ms": 1000,
        "fetch_max_wait_ms": 20,
        "grace_period_s": 10,
    }
    values.update(overrides)
    return Settings(**values)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def foreign_tls(directory: Path) -> Path:
    """A CA the brokers never trusted (ca.pem) and a client certificate it signed; the dir."""
    directory.mkdir(parents=True, exist_ok=True)
    new_key = ("-newkey", "rsa:2048", "-nodes")
    _openssl("req", "-x509", *new_key, "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=not-the-brokers-ca", cwd=directory)  # fmt: skip
    _openssl("req", *new_key, "-keyout", "client.key", "-out", "client.csr",
             "-subj", "/CN=guardian-client", cwd=directory)  # fmt: skip
    _openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "client.pem", "-days", "2", cwd=directory)  # fmt: skip
    return directory

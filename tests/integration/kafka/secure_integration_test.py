"""The guardian's clients on a secured Apache Kafka: SASL_SSL with SCRAM-SHA-512, and mutual TLS.

With the documented settings every client (admin, consumer, the three
producers) connects and a bad deploy is rolled back. A wrong password, a CA
file that did not sign the brokers' certificates, or a client certificate
the brokers do not trust is a ConfigError at once, with no retry loop:
waiting never fixes a credential.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from guardian.config.settings import Settings
from guardian.errors import ConfigError
from guardian.kafka.admin import ensure_topics
from guardian.kafka.sink import KafkaSink
from tests.integration.daemon.daemon_integration_test import running
from tests.integration.kafka.secure_cluster import (
    Listener,
    SecureCluster,
    foreign_tls,
    secure_cluster,
    secure_settings,
)
from tests.support.events import deploy, traffic
from tests.support.kafka import produce_json, read_until

pytestmark = pytest.mark.kafka

LISTENERS: list[Listener] = ["sasl_ssl", "mtls"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    """A secure one-node cluster for this module."""
    with secure_cluster(tmp_path_factory.mktemp("secure-kafka")) as started:
        yield started


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA the brokers never trusted, with a client certificate it signed."""
    return foreign_tls(tmp_path_factory.mktemp("foreign-tls"))


async def _refused_at_once(settings: Settings) -> ConfigError:
    """Topic creation fails with a ConfigError well inside the connect budget, never retried."""
    assert settings.bootstrap_servers
    began = time.monotonic()
    with capture_logs() as logs, pytest.raises(ConfigError) as refused:
        await ensure_topics(settings, settings.bootstrap_servers)
    assert time.monotonic() - began < 5 < settings.connect_timeout_s
    assert [e for e in logs if e["event"] == "broker_unreachable"] == []
    assert not refused.value.retriable
    return refused.value


@pytest.mark.parametrize("listener", LISTENERS)
async def test_a_bad_deploy_is_rolled_back_through_a_secured_listener(
    cluster: SecureCluster, listener: Listener
) -> None:
    """The daemon connects with the documented settings; the command reaches the command topic."""
    settings = secure_settings(cluster, listener)
    async with running(settings):
        await produce_json(cluster.plaintext, settings.deploy_topic, [deploy(deploy_id="d-sec")])
        await produce_json(
            cluster.plaintext,
            settings.metric_topic,
            traffic(seconds=150, error_rate=0.08, cohort="canary"),
        )
        commands = await read_until(cluster.plaintext, settings.command_topic, bool)
    assert [c["deploy_id"] for c in commands] == ["d-sec"]


@pytest.mark.parametrize("listener", LISTENERS)
async def test_producers_are_idempotent_through_a_secured_listener(
    cluster: SecureCluster, listener: Listener
) -> None:
    """The producer-id question is asked with the same credentials and answered yes."""
    settings = secure_settings(cluster, listener)
    assert settings.bootstrap_servers
    async with KafkaSink(settings, settings.bootstrap_servers) as sink:
        assert sink.idempotent


async def test_a_wrong_password_is_a_config_error_at_once(cluster: SecureCluster) -> None:
    """SCRAM refuses the password: one ConfigError naming SASL and the settings to check."""
    settings = secure_settings(cluster, "sasl_ssl", sasl_password="not-the-password")
    error = await _refused_at_once(settings)
    assert "SASL authentication" in str(error)
    assert "GUARDIAN_SASL_PASSWORD" in str(error)
    assert "not-the-password" not in str(error)
    assert settings.bootstrap_servers
    with pytest.raises(ConfigError):  # the producers say the same, not "broker away"
        await KafkaSink(settings, settings.bootstrap_servers).start()


@pytest.mark.parametrize("listener", LISTENERS)
async def test_a_ca_that_did_not_sign_the_brokers_is_a_config_error_at_once(
    cluster: SecureCluster, foreign: Path, listener: Listener
) -> None:
    """The brokers' certificate fails verification against the wrong CA file."""
    settings = secure_settings(cluster, listener, ssl_cafile=foreign / "ca.pem")
    error = await _refused_at_once(settings)
    assert "certificate is not trusted" in str(error)
    assert "GUARDIAN_SSL_CAFILE" in str(error)


async def test_a_client_certificate_the_brokers_do_not_trust_is_a_config_error_at_once(
    cluster: SecureCluster, foreign: Path
) -> None:
    """The mutual-TLS listener rejects a client certificate signed by a foreign CA."""
    settings = secure_settings(
        cluster,
        "mtls",
        ssl_certfile=foreign / "client.pem",
        ssl_keyfile=foreign / "client.key",
    )
    error = await _refused_at_once(settings)
    assert "refused the TLS handshake" in str(error)
    assert "GUARDIAN_SSL_CERTFILE" in str(error)

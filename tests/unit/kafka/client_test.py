"""Kafka connection options: security settings reach every client."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from guardian.config.settings import Settings
from guardian.errors import ConfigError
from guardian.kafka.client import connection_options


def test_plaintext_options() -> None:
    """Plaintext needs only servers and the client id."""
    options = connection_options(Settings(), "a:1,b:2")
    assert options["bootstrap_servers"] == ["a:1", "b:2"]
    assert options["security_protocol"] == "PLAINTEXT"
    assert "sasl_mechanism" not in options


def test_sasl_ssl_options_carry_credentials_and_tls() -> None:
    """SASL_SSL passes mechanism, user, password and a TLS context."""
    settings = Settings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="guardian",
        sasl_password="pw",  # type: ignore[arg-type]
    )
    options = connection_options(settings, "a:1")
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "guardian"
    assert options["sasl_plain_password"] == "pw"
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_sasl_without_user_is_a_config_error() -> None:
    """SASL without mechanism and user name is refused with the settings to set."""
    with pytest.raises(ConfigError, match="GUARDIAN_SASL_MECHANISM"):
        connection_options(Settings(security_protocol="SASL_PLAINTEXT"), "a:1")


def test_missing_tls_files_are_a_config_error(tmp_path: Path) -> None:
    """A CA file that does not exist is reported as configuration, not a crash."""
    settings = Settings(security_protocol="SSL", ssl_cafile=tmp_path / "absent.pem")
    with pytest.raises(ConfigError, match="TLS"):
        connection_options(settings, "a:1")

"""Settings precedence (flag > environment > file > default) and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardian.config.settings import Settings, load_settings
from guardian.errors import ConfigError


def test_defaults_need_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing configured the guardian uses the embedded broker and local HTTP."""
    monkeypatch.delenv("GUARDIAN_BOOTSTRAP_SERVERS", raising=False)
    settings = load_settings()
    assert settings.bootstrap_servers is None
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert settings.metric_topic == "metric.events"


def test_flag_beats_env_beats_file_beats_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each source overrides the ones below it, field by field."""
    config = tmp_path / "guardian.yaml"
    config.write_text("group-id: from-file\nhttp: 0.0.0.0:9000\nlinger_ms: 7\n")
    monkeypatch.setenv("GUARDIAN_HTTP", "127.0.0.1:9100")
    monkeypatch.setenv("GUARDIAN_GROUP_ID", "from-env")
    settings = load_settings(config, group_id="from-flag", http=None)
    assert settings.group_id == "from-flag"
    assert settings.http == "127.0.0.1:9100"
    assert settings.linger_ms == 7
    assert settings.fetch_max_wait_ms is None


def test_unset_fetch_wait_is_short_only_on_the_embedded_broker() -> None:
    """The embedded broker answers a fetch only when its wait runs out; Kafka answers at once."""
    unset = Settings()
    assert unset.fetch_wait_ms == 500
    assert unset.for_embedded_broker().fetch_wait_ms == 10
    chosen = Settings(fetch_max_wait_ms=250)
    assert chosen.fetch_wait_ms == 250
    assert chosen.for_embedded_broker().fetch_wait_ms == 250


def test_secrets_are_hidden_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secret settings never show their value when printed or logged."""
    monkeypatch.setenv("GUARDIAN_SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("GUARDIAN_SIGNING_KEY", "k3y")
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    assert "k3y" not in str(settings)
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == "hunter2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus_setting: 1\n", "bogus_setting"),
        ("http: nonsense\n", "http: Value error, expected HOST:PORT"),
        ("- a list\n", "must be a mapping"),
        ("key: [unclosed\n", "not valid YAML"),
        ("session_timeout_ms: 5\n", "session_timeout_ms"),
    ],
)
def test_invalid_config_file_is_a_clear_config_error(
    tmp_path: Path, text: str, message: str
) -> None:
    """A bad config file names the file and the setting at fault."""
    config = tmp_path / "guardian.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert message in str(info.value)


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    """A config path that does not exist is reported, not a stack trace."""
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.yaml")


def test_empty_config_file_means_defaults(tmp_path: Path) -> None:
    """An empty file is valid and changes nothing."""
    config = tmp_path / "guardian.yaml"
    config.write_text("")
    assert load_settings(config).group_id == "guardian"

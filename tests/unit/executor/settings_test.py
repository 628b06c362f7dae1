"""Executor settings: the daemon's Kafka settings, the executor's own group and a config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardian.errors import ConfigError
from guardian.executor.settings import load_executor_settings


def test_the_kafka_adapters_get_the_executors_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GUARDIAN_GROUP_ID shared with the daemon never makes the executor join its group."""
    monkeypatch.setenv("GUARDIAN_GROUP_ID", "guardian")
    settings = load_executor_settings(None, executor_group_id=None)
    kafka = settings.kafka_settings()
    assert (settings.group_id, kafka.group_id) == ("guardian", "guardian-executor")
    assert (settings.executor_http_host, settings.executor_http_port) == ("127.0.0.1", 8081)


def test_flags_beat_the_environment_which_beats_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flag > GUARDIAN_* > --config YAML > default."""
    config = tmp_path / "executor.yaml"
    config.write_text("dry-run: true\nconverge_timeout_s: 30\ntargets_file: /etc/targets.yaml\n")
    monkeypatch.setenv("GUARDIAN_CONVERGE_TIMEOUT_S", "60")
    settings = load_executor_settings(config, targets_file=Path("flag.yaml"))
    assert settings.dry_run is True
    assert settings.converge_timeout_s == 60
    assert settings.targets_file == Path("flag.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("executor_http: nowhere\n", "executor_http"),
        ("[1, 2]\n", "must be a mapping"),
        ("a: [\n", "not valid YAML"),
        ("", None),
    ],
)
def test_bad_settings_are_one_config_error(tmp_path: Path, text: str, message: str | None) -> None:
    """Each problem names the setting or the file."""
    config = tmp_path / "executor.yaml"
    config.write_text(text)
    if message is None:
        assert load_executor_settings(config).dry_run is False
        return
    with pytest.raises(ConfigError, match=message):
        load_executor_settings(config)


def test_a_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    """An unreadable file is named."""
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_executor_settings(tmp_path / "missing.yaml")


def test_the_readme_documents_every_executor_setting() -> None:
    """The README's executor table is the one generated from the settings model."""
    from guardian.executor.settings import executor_reference_table

    text = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    start = text.index("<!-- executor-reference:start -->\n") + len(
        "<!-- executor-reference:start -->\n"
    )
    end = text.index("<!-- executor-reference:end -->")
    assert text[start:end] == executor_reference_table()

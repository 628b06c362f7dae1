"""``guardian targets check`` and the configuration errors of ``guardian execute``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from guardian.cli.main import app

GOOD = """\
targets:
  - service: checkout
    environment: production
    namespace: shop
    kind: Deployment
    name: checkout
"""


def test_targets_check_accepts_a_valid_file(tmp_path: Path) -> None:
    """A valid file is OK with its count and exit 0."""
    good = tmp_path / "targets.yaml"
    good.write_text(GOOD)
    result = CliRunner().invoke(app, ["targets", "check", str(good)])
    assert result.exit_code == 0
    assert "OK (1 targets)" in result.stdout


def test_targets_check_prints_file_line_errors_and_exits_1(tmp_path: Path) -> None:
    """Each problem is a file:line:column line; the exit code is 1."""
    bad = tmp_path / "targets.yaml"
    bad.write_text(GOOD.replace("Deployment", "DaemonSet"))
    result = CliRunner().invoke(app, ["targets", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:5:5: targets[0].kind:" in result.stdout


def test_execute_with_bad_settings_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad setting stops ``execute`` before anything starts."""
    monkeypatch.setenv("GUARDIAN_CONFLICT_RETRIES", "-1")
    result = CliRunner().invoke(app, ["execute"])
    assert result.exit_code == 2
    assert "conflict_retries" in result.output


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "GUARDIAN_BOOTSTRAP_SERVERS"),
        (
            {
                "GUARDIAN_BOOTSTRAP_SERVERS": "127.0.0.1:1",
                "GUARDIAN_TARGETS_FILE": "/nonexistent.yaml",
            },
            "nonexistent",
        ),
    ],
)
def test_execute_without_kafka_or_targets_exits_2(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No Kafka, or no targets file: one line, exit code 2, no traceback."""
    monkeypatch.delenv("GUARDIAN_BOOTSTRAP_SERVERS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GUARDIAN_LOG_FORMAT", "console")
    result = CliRunner().invoke(app, ["execute", "--http", "127.0.0.1:0"])
    assert result.exit_code == 2, result.output
    assert message in result.output

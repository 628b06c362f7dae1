"""``guardian config``: the reference table and the effective settings."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from guardian.cli.main import app


def test_reference_prints_every_setting() -> None:
    """The reference lists each setting with its environment variable."""
    result = CliRunner().invoke(app, ["config", "reference"])
    assert result.exit_code == 0
    assert "`GUARDIAN_BOOTSTRAP_SERVERS`" in result.stdout
    assert "`GUARDIAN_SIGNING_KEY`" in result.stdout


def test_show_masks_secrets(tmp_path: Path) -> None:
    """The effective settings are printed with secrets masked."""
    config = tmp_path / "guardian.yaml"
    config.write_text("signing_key: very-secret\ngroup_id: team-a\n")
    result = CliRunner().invoke(app, ["config", "show", "--config", str(config)])
    assert result.exit_code == 0
    assert '"group_id": "team-a"' in result.stdout
    assert "very-secret" not in result.stdout


def test_show_reports_bad_config_with_exit_2(tmp_path: Path) -> None:
    """A bad config file is one clear line and exit code 2."""
    config = tmp_path / "guardian.yaml"
    config.write_text("nonsense: 1\n")
    result = CliRunner().invoke(app, ["config", "show", "--config", str(config)])
    assert result.exit_code == 2
    assert "nonsense" in result.output


def test_run_with_bad_config_file_exits_2(tmp_path: Path) -> None:
    """``guardian run`` refuses a bad config file before starting anything."""
    config = tmp_path / "guardian.yaml"
    config.write_text("http: 12\n")
    result = CliRunner().invoke(app, ["run", "--config", str(config)])
    assert result.exit_code == 2
    assert "http: Input should be a valid string" in result.output


def test_version() -> None:
    """``--version`` prints the package version."""
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("guardian ")

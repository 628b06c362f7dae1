"""``guardian rules check|test|schema`` as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from guardian.cli.main import app

RULES = Path(__file__).resolve().parents[3] / "rules"
runner = CliRunner()

BAD = """rules:
  - name: x
    metric: error_rate
    condition: "> 5"
    window: 5x
    action: rollback
"""

TEST_FILE = """
rule_files: [rules.yaml]
tests:
  - name: passes
    defaults: {service: s, environment: production, region: r}
    deploys: [{type: started, deploy_id: d1, at: 0}]
    series: [{series: {}, values: {requests: "20x40", errors: "5x40"}}]
    expect: [{rule: x, action: rollback}]
  - name: fails
    defaults: {service: s, environment: production, region: r}
    expect: [{rule: x, action: rollback}]
"""

GOOD = """rules:
  - name: x
    metric: error_rate
    condition: "> 5%"
    window: 10s
    min_samples: 2
    action: rollback
"""


def test_check_default_pack() -> None:
    """The shipped rules check clean."""
    result = runner.invoke(app, ["rules", "check", str(RULES)])
    assert result.exit_code == 0, result.output
    assert "rules OK" in result.output


def test_check_reports_file_line_column(tmp_path: Path) -> None:
    """Problems print as file:line:column: path: message and exit 1."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    result = runner.invoke(app, ["rules", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:5:5: rules[0].window: " in result.output


def test_check_missing_path(tmp_path: Path) -> None:
    """A path that does not exist is an error, not a crash."""
    result = runner.invoke(app, ["rules", "check", str(tmp_path / "none")])
    assert result.exit_code == 1


def test_rule_tests_pass_and_fail(tmp_path: Path) -> None:
    """Rule tests print PASS/FAIL per case with a diff and exit 1 on any failure."""
    (tmp_path / "rules.yaml").write_text(GOOD)
    test_file = tmp_path / "x_test.yaml"
    test_file.write_text(TEST_FILE)
    result = runner.invoke(app, ["rules", "test", str(test_file)])
    assert result.exit_code == 1
    assert f"PASS {test_file}: passes" in result.output
    assert f"FAIL {test_file}: fails" in result.output
    assert "- expected 1× {'rule': 'x', 'action': 'rollback'}, got 0" in result.output
    assert "1 passed, 1 failed" in result.output


def test_rule_tests_of_the_default_pack() -> None:
    """The shipped rule tests pass through the CLI."""
    files = [str(p) for p in sorted((RULES / "tests").glob("*_test.yaml"))]
    result = runner.invoke(app, ["rules", "test", *files])
    assert result.exit_code == 0, result.output
    assert " 0 failed" in result.output


def test_unrunnable_test_file(tmp_path: Path) -> None:
    """A test file naming missing rules is reported as failed."""
    test_file = tmp_path / "x_test.yaml"
    test_file.write_text("rule_files: [nope.yaml]\ntests: []\n")
    result = runner.invoke(app, ["rules", "test", str(test_file)])
    assert result.exit_code == 1
    assert "cannot run" in result.output


def test_schema_is_json_schema() -> None:
    """The schema command prints the rule file's JSON Schema."""
    result = runner.invoke(app, ["rules", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert "rules" in schema["properties"]
    assert "Rule" in schema["$defs"]

"""``guardian replay``: decisions as JSONL or a table, bad lines reported, explanations."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from typer.testing import CliRunner

from guardian.cli.main import app

runner = CliRunner()
T0 = 1_795_478_400_000

RULES = """rules:
  - name: errors
    metric: error_rate
    window: 10s
    for: 10s
    condition: "> 5%"
    min_samples: 2
    action: rollback
"""


def _events(tmp_path: Path) -> Path:
    lines = [
        {
            "kind": "deploy",
            "type": "started",
            "deploy_id": "d1",
            "service": "s",
            "environment": "production",
            "version": "2",
            "regions": ["us-east"],
            "timestamp": T0,
        },
    ]
    lines += [
        {
            "kind": "metric",
            "service": "s",
            "environment": "production",
            "region": "us-east",
            "timestamp": T0 + i * 1000,
            "values": {"requests": 20, "errors": 4},
        }
        for i in range(30)
    ]
    path = tmp_path / "events.jsonl"
    body = b"\n".join(orjson.dumps(x) for x in lines[:5])
    body += b"\nnot json\n\n" + b"\n".join(orjson.dumps(x) for x in lines[5:]) + b"\n"
    path.write_bytes(body)
    (tmp_path / "rules.yaml").write_text(RULES)
    return path


def test_jsonl_decisions_and_bad_lines(tmp_path: Path) -> None:
    """Each decision is one JSON line with the documented fields; bad lines go to stderr."""
    events = _events(tmp_path)
    result = runner.invoke(app, ["replay", str(events), "--rules", str(tmp_path / "rules.yaml")])
    assert result.exit_code == 0, result.output
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(decisions) == 1
    d = decisions[0]
    assert {
        "at",
        "rule",
        "action",
        "severity",
        "service",
        "environment",
        "deploy_id",
        "regions",
        "reason",
        "evidence",
    } <= set(d)
    assert (d["rule"], d["deploy_id"], d["at"]) == ("errors", "d1", "2026-11-24T00:00:11.000Z")
    assert f"{events}:6: skipped: not valid JSON" in result.stderr
    assert "1 undecodable line(s) skipped" in result.stderr


def test_table_format(tmp_path: Path) -> None:
    """The table format shows the decision's rule and reason."""
    events = _events(tmp_path)
    result = runner.invoke(
        app, ["replay", str(events), "--rules", str(tmp_path / "rules.yaml"), "--format", "table"]
    )
    assert result.exit_code == 0
    assert "errors" in result.stdout
    assert "rollback" in result.stdout


def test_explain(tmp_path: Path) -> None:
    """--explain prints why each rule did or did not fire for the deploy."""
    events = _events(tmp_path)
    rules = str(tmp_path / "rules.yaml")
    result = runner.invoke(app, ["replay", str(events), "--rules", rules, "--explain", "d1"])
    assert result.exit_code == 0
    explanation = json.loads(result.stdout)
    assert explanation["deploy_id"] == "d1"
    assert explanation["rollback"]["rule"] == "errors"
    assert explanation["rules"][0]["state"] == "firing"
    missing = runner.invoke(app, ["replay", str(events), "--rules", rules, "--explain", "zz"])
    assert missing.exit_code == 1


def test_bad_arguments(tmp_path: Path) -> None:
    """Unknown formats, invalid rules and missing files exit 2 with a message."""
    events = _events(tmp_path)
    rules = str(tmp_path / "rules.yaml")
    assert (
        runner.invoke(app, ["replay", str(events), "--rules", rules, "--format", "x"]).exit_code
        == 2
    )
    (tmp_path / "bad.yaml").write_text("rules: [{name: x}]")
    bad = runner.invoke(app, ["replay", str(events), "--rules", str(tmp_path / "bad.yaml")])
    assert bad.exit_code == 2
    assert "invalid rules" in bad.stderr
    assert (
        runner.invoke(app, ["replay", str(tmp_path / "no.jsonl"), "--rules", rules]).exit_code == 2
    )

"""``guardian inputs check|defaults`` and ``guardian replay --input-format otlp-json``."""

from __future__ import annotations

from pathlib import Path

import orjson
from google.protobuf import json_format
from typer.testing import CliRunner

from guardian.cli.main import app
from tests.support.cdevents import cdevent
from tests.unit.inputs.builders import CANARY, T0_MS, export, histogram

runner = CliRunner()
RULES = """rules:
  - name: canary-errors
    match: {cohort: canary}
    metric: error_rate
    window: 10s
    for: 10s
    condition: "> 5%"
    min_samples: 2
    action: rollback
"""
OK = {"http.response.status_code": 200}
FAIL = {"http.response.status_code": 500}


def test_check_accepts_the_printed_defaults(tmp_path: Path) -> None:
    """``defaults`` prints a file that ``check`` accepts."""
    printed = runner.invoke(app, ["inputs", "defaults"])
    assert printed.exit_code == 0
    path = tmp_path / "inputs.yaml"
    path.write_text(printed.stdout)
    checked = runner.invoke(app, ["inputs", "check", str(path)])
    assert checked.exit_code == 0, checked.output
    assert f"{path}: OK" in checked.stdout


def test_check_lists_every_problem_and_exits_1(tmp_path: Path) -> None:
    """Problems come as file:line:column: path: message, one per line."""
    path = tmp_path / "inputs.yaml"
    path.write_text("otlp:\n  labels: {sevice: [x]}\nprometheus:\n  drop: [{}]\n")
    result = runner.invoke(app, ["inputs", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:2:12: otlp.labels.sevice: Extra inputs are not permitted" in result.stdout
    assert f"{path}:4:10: prometheus.drop[0]:" in result.stdout
    assert "2 problem(s)" in result.stderr


def _dump(tmp_path: Path, error_rate: float) -> Path:
    """A deploy, then 30 s of OTLP exports (delta) of a canary at ``error_rate``."""
    deploy = {
        "kind": "deploy",
        "type": "started",
        "deploy_id": "d-otlp",
        "service": "checkout",
        "environment": "production",
        "version": "2.4.1",
        "previous_version": "2.4.0",
        "strategy": "canary",
        "timestamp": T0_MS,
    }
    lines = [orjson.dumps(deploy)]
    for i in range(1, 31):
        errors = round(100 * error_rate)
        metric = histogram(
            [(OK, 100 - errors, [100 - errors] + [0] * 14), (FAIL, errors, [errors] + [0] * 14)],
            at_ms=T0_MS + i * 1000,
            delta=True,
        )
        lines.append(json_format.MessageToJson(export(CANARY, [metric]), indent=None).encode())
    lines.append(b"{not json")
    path = tmp_path / "dump.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_replay_reads_an_otlp_dump(tmp_path: Path) -> None:
    """A bad canary in an OTLP dump is rolled back exactly as from v1 events; bad lines reported."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    dump = _dump(tmp_path, error_rate=0.2)
    result = runner.invoke(
        app, ["replay", str(dump), "--input-format", "otlp-json", "--rules", str(rules)]
    )
    assert result.exit_code == 0, result.output
    decisions = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [(d["rule"], d["action"], d["deploy_id"]) for d in decisions] == [
        ("canary-errors", "rollback", "d-otlp")
    ]
    assert f"{dump}:32: skipped: not an OTLP" not in result.stderr  # a v1 line, not OTLP
    assert f"{dump}:32: skipped: not valid JSON" in result.stderr


def test_replay_of_a_healthy_dump_decides_nothing(tmp_path: Path) -> None:
    """1% errors stay below the rule."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    dump = _dump(tmp_path, error_rate=0.01)
    result = runner.invoke(
        app, ["replay", str(dump), "--input-format", "otlp-json", "--rules", str(rules)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""


def test_replay_refuses_an_unknown_format_and_a_bad_mapping(tmp_path: Path) -> None:
    """Both are usage errors (exit 2)."""
    dump = tmp_path / "x.jsonl"
    dump.write_text("")
    assert runner.invoke(app, ["replay", str(dump), "--input-format", "csv"]).exit_code == 2
    bad = tmp_path / "inputs.yaml"
    bad.write_text("nope: 1\n")
    result = runner.invoke(
        app, ["replay", str(dump), "--input-format", "otlp-json", "--inputs", str(bad)]
    )
    assert result.exit_code == 2
    assert "nope" in result.stderr


def test_replay_of_an_otlp_dump_takes_its_deploy_as_a_cdevent(tmp_path: Path) -> None:
    """A deploy announced as a CDEvent in the dump is a deploy, as on the deploy topic."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    dump = _dump(tmp_path, error_rate=0.2)
    lines = dump.read_bytes().splitlines()
    lines[0] = orjson.dumps(cdevent(at_ms=T0_MS))
    dump.write_bytes(b"\n".join(lines) + b"\n")
    result = runner.invoke(
        app, ["replay", str(dump), "--input-format", "otlp-json", "--rules", str(rules)]
    )
    assert result.exit_code == 0, result.output
    decisions = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [(d["rule"], d["action"]) for d in decisions] == [("canary-errors", "rollback")]
    assert f"{dump}:1:" not in result.stderr

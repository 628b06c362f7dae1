"""``guardian rollback`` and ``guardian tokens`` against a live API (in-memory request log)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import typer
from typer.testing import CliRunner

from guardian.cli import rollback_cmd, tokens_cmd
from guardian.manual.tokens import Identity, TokenTable, parse_tokens
from guardian.ports import free_port
from tests.support.manual import serve_in_thread, token_of
from tests.unit.api.conftest import build_app

runner = CliRunner()


def cli() -> typer.Typer:
    """A CLI with just the commands under test."""
    app = typer.Typer()
    rollback_cmd.register(app)
    tokens_cmd.register(app)
    return app


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    """URL of an API with alice, bob and carol as token holders."""
    # The server thread logs to stdout, which the CLI runner captures: keep it quiet.
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    app, *_ = build_app(tmp_path)
    with serve_in_thread(app) as base:
        yield base


def run(url: str, who: str, *args: str) -> tuple[int, str, str]:
    """Run the CLI as ``who``; return exit code, stdout and stderr."""
    result = runner.invoke(
        cli(),
        list(args),
        env={"GUARDIAN_URL": url, "GUARDIAN_TOKEN": token_of(who), "COLUMNS": "200"},
    )
    return result.exit_code, result.stdout, result.stderr


def test_request_approve_list_show_with_json(url: str) -> None:
    """alice requests, bob approves; list and show report it, as JSON and as tables."""
    code, out, _ = run(
        url,
        "alice",
        "rollback",
        "request",
        "--service",
        "checkout",
        "--env",
        "production",
        "--reason",
        "errors",
        "--deploy-id",
        "d-1",
        "--json",
    )
    assert code == 0, out
    rid = json.loads(out)["id"]
    code, _, err = run(url, "alice", "rollback", "approve", rid)
    assert code == 1
    assert "second person" in err
    code, out, _ = run(url, "bob", "rollback", "approve", rid, "--json")
    assert json.loads(out)["status"] == "approved"
    code, out, _ = run(
        url, "bob", "rollback", "list", "--status", "approved", "--service", "checkout", "--json"
    )
    assert [item["id"] for item in json.loads(out)["items"]] == [rid]
    code, out, _ = run(url, "bob", "rollback", "list")
    assert code == 0
    assert "approved" in out
    code, out, _ = run(url, "bob", "rollback", "show", rid)
    assert code == 0
    assert "checkout" in out


def test_deny_prints_a_table(url: str) -> None:
    """Denying prints the request with the denial reason."""
    code, out, _ = run(
        url,
        "alice",
        "rollback",
        "request",
        "--service",
        "checkout",
        "--env",
        "production",
        "--reason",
        "errors",
        "--json",
    )
    rid = json.loads(out)["id"]
    code, out, _ = run(url, "bob", "rollback", "deny", rid, "--reason", "false alarm")
    assert code == 0
    assert "denied" in out


def test_errors_are_reported_with_exit_codes(url: str) -> None:
    """No token is exit 2; a refusal is exit 1 with the problem; an unreachable guardian is 2."""
    result = runner.invoke(
        cli(), ["rollback", "list"], env={"GUARDIAN_URL": url, "GUARDIAN_TOKEN": ""}
    )
    assert result.exit_code == 2
    assert "GUARDIAN_TOKEN" in result.stderr
    code, _, err = run(
        url, "carol", "rollback", "request", "--service", "s", "--env", "e", "--reason", "r"
    )
    assert code == 1
    assert "Forbidden (403)" in err
    code, _, err = run(f"http://127.0.0.1:{free_port()}", "bob", "rollback", "list")
    assert code == 2
    assert "cannot reach" in err


def test_tokens_new_prints_a_token_and_its_yaml_once() -> None:
    """The printed YAML entry recognises the printed token, as text and as JSON."""
    from ruamel.yaml import YAML

    result = runner.invoke(cli(), ["tokens", "new", "--id", "dana", "--role", "SRE", "--json"])
    payload = json.loads(result.stdout)
    entries = parse_tokens(YAML(typ="safe").load("tokens:\n" + payload["yaml"]))
    assert TokenTable(entries).identify(payload["token"]) == Identity("dana", frozenset({"SRE"}))
    text = runner.invoke(
        cli(), ["tokens", "new", "--id", "eve", "--role", "SRE", "--role", "DevOps Lead"]
    )
    assert text.exit_code == 0
    assert "shown once" in text.stdout
    assert 'roles: [SRE, "DevOps Lead"]' in text.stdout

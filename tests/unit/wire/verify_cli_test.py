"""``guardian verify`` across signature schemes: JCS, legacy, unknown."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import typer
from typer.testing import CliRunner

from guardian.cli.notify_cmd import register
from guardian.wire.signing import legacy_canonical_json
from tests.verifiers.samples import KEY, genuine_commands


def _app() -> typer.Typer:
    cli = typer.Typer()
    register(cli)
    return cli


def test_verify_marks_legacy_signatures_and_names_unknown_schemes() -> None:
    """JCS commands are ok, legacy ones ok and marked, another scheme is BAD by its name."""
    commands = genuine_commands()
    current = commands["integral-floats"]
    unsigned = {key: value for key, value in commands["tiny-numbers"].items() if key != "signature"}
    digest = hmac.new(KEY.encode(), legacy_canonical_json(unsigned), hashlib.sha256).hexdigest()
    legacy = {**unsigned, "signature": digest}
    future = {**commands["manual-approved"], "signature": "ed25519+jcs:AAAA"}
    stdin = b"".join(orjson.dumps(command) + b"\n" for command in (current, legacy, future))
    result = CliRunner().invoke(_app(), ["verify"], input=stdin, env={"GUARDIAN_SIGNING_KEY": KEY})
    assert result.exit_code == 1
    assert f"ok  {current['command_id']}\n" in result.output
    assert f"ok  {legacy['command_id']} (legacy json.dumps signature)" in result.output
    assert f"BAD {future['command_id']}: unknown signature algorithm 'ed25519+jcs'" in result.output

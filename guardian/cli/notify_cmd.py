"""``guardian subscriptions check FILE`` and ``guardian verify``: notification and command tooling.

``subscriptions check`` validates a subscriptions file and prints every
problem as ``file:line:column: field.path: message`` (exit 1), like ``rules
check``. ``verify`` checks the signatures of rollback commands
(``hmac-sha256+jcs``, or the legacy bare-hex form, which it marks) read from a
topic (``--topic`` with ``--bootstrap-servers``, from the beginning to the
current end) or as JSON lines from stdin, prints ``ok``/``BAD`` per
``command_id`` and exits 1 if any is bad. The key comes from an environment
variable (never a flag, so it stays out of shell history).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import orjson
import typer

EXIT_BAD = 1
EXIT_USAGE = 2


def register(app: typer.Typer) -> None:
    """Add ``subscriptions check`` and ``verify`` to the CLI."""
    subscriptions = typer.Typer(help="Work with subscriptions files.", no_args_is_help=True)
    subscriptions.command("check")(check)
    app.add_typer(subscriptions, name="subscriptions")
    app.command("verify")(verify)


def check(file: Path = typer.Argument(..., help="Subscriptions YAML file.")) -> None:
    """Validate a subscriptions file; print every problem with its line and column."""
    from guardian.notify.subscriptions import SubscriptionError, load_subscriptions

    try:
        compiled = load_subscriptions(file)
    except SubscriptionError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(EXIT_BAD) from None
    typer.echo(f"{file}: {len(compiled)} subscription(s) OK")


def verify(
    key_env: str = typer.Option(
        "GUARDIAN_SIGNING_KEY", "--key-env", help="Environment variable holding the HMAC key."
    ),
    topic: str | None = typer.Option(None, "--topic", help="Read commands from this topic."),
    bootstrap_servers: str | None = typer.Option(
        None, "--bootstrap-servers", help="Kafka HOST:PORT,... (with --topic)."
    ),
) -> None:
    """Check rollback command signatures (topic or JSON lines on stdin); exit 1 if any is bad."""
    key = os.environ.get(key_env)
    if not key:
        typer.echo(f"guardian verify: {key_env} is not set", err=True)
        raise typer.Exit(EXIT_USAGE)
    if topic is not None:
        if not bootstrap_servers:
            typer.echo("guardian verify: --topic needs --bootstrap-servers", err=True)
            raise typer.Exit(EXIT_USAGE)
        import asyncio

        lines = asyncio.run(_read_topic(bootstrap_servers, topic))
    else:
        lines = [line.encode() for line in sys.stdin]
    raise typer.Exit(report(lines, key.encode()))


def report(lines: list[bytes], key: bytes) -> int:
    """Print ok/BAD per command; return the exit code (1 if any command is bad)."""
    from guardian.wire.signing import LEGACY, Problem
    from guardian.wire.signing import check as check_signature

    bad = checked = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record: Any = orjson.loads(line)
        except orjson.JSONDecodeError:
            typer.echo(f"BAD line {number}: not JSON")
            bad += 1
            continue
        if not isinstance(record, dict) or record.get("kind") != "rollback_command":
            continue  # only rollback commands are checked here
        checked += 1
        command_id = record.get("command_id", f"line {number}")
        outcome = check_signature(record, key)
        if outcome.ok:
            legacy = " (legacy json.dumps signature)" if outcome.scheme == LEGACY else ""
            typer.echo(f"ok  {command_id}{legacy}")
        else:
            reason = str(outcome.problem)
            if outcome.problem is Problem.UNKNOWN_ALG:
                reason += f" {outcome.alg!r}"
            typer.echo(f"BAD {command_id}: {reason}")
            bad += 1
    typer.echo(f"{checked} command(s) checked, {bad} bad", err=True)
    return EXIT_BAD if bad else 0


async def _read_topic(bootstrap_servers: str, topic: str) -> list[bytes]:
    from guardian.config.settings import load_settings
    from guardian.kafka.state_store import read_topic

    # Security settings (SASL/SSL) come from GUARDIAN_* like for the daemon.
    settings = load_settings(bootstrap_servers=bootstrap_servers)
    return [value for _, value in await read_topic(settings, bootstrap_servers, topic) if value]

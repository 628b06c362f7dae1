"""``guardian rollback``: request, approve, deny, list and show manual rollbacks over the HTTP API.

Talks to ``--url`` / ``GUARDIAN_URL`` with the token in ``GUARDIAN_TOKEN``
(an environment variable, so it stays out of shell history and ``ps``).
Prints tables for people and, with ``--json``, the API's JSON for scripts.
Exit codes: 0 done, 1 refused by the guardian (the problem is printed), 2
the guardian could not be reached or no token is set.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Annotated, Any

import typer

EXIT_REFUSED = 1
EXIT_UNREACHABLE = 2
DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT_S = 30.0

rollback_app = typer.Typer(
    help="Manual rollbacks: request one, have a second person approve it.",
    no_args_is_help=True,
)

UrlOpt = Annotated[
    str, typer.Option("--url", envvar="GUARDIAN_URL", help="Guardian control plane URL.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def register(app: typer.Typer) -> None:
    """Add ``rollback`` and its sub-commands to the CLI."""
    app.add_typer(rollback_app, name="rollback")


def _call(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    token = os.environ.get("GUARDIAN_TOKEN", "")
    if not token:
        typer.echo(
            "guardian: set GUARDIAN_TOKEN to your API token (see 'guardian tokens new')", err=True
        )
        raise typer.Exit(EXIT_UNREACHABLE)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - the URL is the operator's own guardian
        url.rstrip("/") + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        _refused(exc)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        typer.echo(f"guardian: cannot reach the guardian at {url}: {reason}", err=True)
        raise typer.Exit(EXIT_UNREACHABLE) from None


def _refused(exc: urllib.error.HTTPError) -> None:
    raw = exc.read()
    try:
        problem = json.loads(raw)
        message = f"{problem.get('title', exc.reason)} ({exc.code}): {problem.get('detail', '')}"
    except ValueError:
        message = f"HTTP {exc.code}: {raw.decode(errors='replace')[:500]}"
    typer.echo(f"guardian: {message}", err=True)
    raise typer.Exit(EXIT_REFUSED)


def _print(items: list[dict[str, Any]], as_json: bool, single: bool = False) -> None:
    if as_json:
        typer.echo(json.dumps(items[0] if single else {"items": items}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    for column in ("id", "status"):
        table.add_column(column, no_wrap=True)
    for column in ("service/env", "deploy", "requested by", "decided by", "expires", "reason"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(
            item["id"],
            item["status"],
            f"{item['service']}/{item['environment']}",
            item["deploy_id"],
            item["requested_by"],
            item.get("decided_by") or "",
            item["expires_at"],
            item.get("decision_reason") or item["reason"],
        )
    Console().print(table)


@rollback_app.command("request")
def request_cmd(
    service: Annotated[str, typer.Option("--service", help="Service to roll back.")],
    env: Annotated[str, typer.Option("--env", help="Its environment.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the approver.")],
    deploy_id: Annotated[
        str | None, typer.Option("--deploy-id", help="Deploy (default: the current one).")
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Ask for a rollback; a second SRE or DevOps Lead must approve it."""
    body: dict[str, Any] = {"service": service, "environment": env, "reason": reason}
    if deploy_id:
        body["deploy_id"] = deploy_id
    _print([_call(url, "POST", "/v1/rollbacks", body)], as_json, single=True)


@rollback_app.command("approve")
def approve_cmd(
    request_id: Annotated[str, typer.Argument(help="Request id (mr-…).")],
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Approve someone else's request: the rollback command is issued."""
    path = f"/v1/rollbacks/{urllib.parse.quote(request_id, safe='')}/approve"
    _print([_call(url, "POST", path)], as_json, single=True)


@rollback_app.command("deny")
def deny_cmd(
    request_id: Annotated[str, typer.Argument(help="Request id (mr-…).")],
    reason: Annotated[str, typer.Option("--reason", help="Why not.")],
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Deny a request (or withdraw your own)."""
    path = f"/v1/rollbacks/{urllib.parse.quote(request_id, safe='')}/deny"
    _print([_call(url, "POST", path, {"reason": reason})], as_json, single=True)


@rollback_app.command("list")
def list_cmd(
    status: Annotated[
        str | None, typer.Option("--status", help="pending, approved, denied or expired.")
    ] = None,
    service: Annotated[str | None, typer.Option("--service", help="Only this service.")] = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """List requests, newest first."""
    query = {k: v for k, v in (("status", status), ("service", service)) if v}
    suffix = "?" + urllib.parse.urlencode(query) if query else ""
    _print(_call(url, "GET", "/v1/rollbacks" + suffix)["items"], as_json)


@rollback_app.command("show")
def show_cmd(
    request_id: Annotated[str, typer.Argument(help="Request id (mr-…).")],
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Show one request."""
    path = f"/v1/rollbacks/{urllib.parse.quote(request_id, safe='')}"
    _print([_call(url, "GET", path)], as_json, single=True)

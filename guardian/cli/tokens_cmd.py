"""``guardian tokens new``: mint an API token and print the tokens-file line holding its hash.

The token is printed once and never stored; the guardian keeps only its
SHA-256. Add the printed YAML item under ``tokens:`` in the tokens file
(``--tokens`` / ``GUARDIAN_TOKENS_FILE``); a running guardian picks it up
within a second.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

tokens_app = typer.Typer(help="API tokens for the manual rollback API.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``tokens`` and its sub-commands to the CLI."""
    app.add_typer(tokens_app, name="tokens")


@tokens_app.command("new")
def new_cmd(
    identity: Annotated[str, typer.Option("--id", help="Who holds the token (e.g. alice).")],
    roles: Annotated[
        list[str], typer.Option("--role", help="A role (repeat for several): SRE, 'DevOps Lead'.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print a fresh token once, and the YAML to add to the tokens file."""
    from guardian.manual.tokens import hash_token, new_token, yaml_entry

    token = new_token()
    entry = yaml_entry(identity, roles, token)
    if as_json:
        payload = {
            "id": identity,
            "roles": roles,
            "token": token,
            "sha256": hash_token(token),
            "yaml": entry,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    typer.echo(f"Token for {identity} (shown once; give it to them, it is not stored):\n")
    typer.echo(f"  {token}\n")
    typer.echo("Add this under 'tokens:' in the tokens file:\n")
    typer.echo(entry)

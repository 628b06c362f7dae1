"""Entry point of the ``guardian`` command: one Typer app, sub-commands registered by module.

Each command module exposes ``register(app)``; importing them lazily keeps
``guardian --help`` fast and lets each command own its dependencies.
"""

from __future__ import annotations

import importlib

import typer

from guardian import __version__

COMMAND_MODULES = (
    "guardian.cli.run_cmd",
    "guardian.cli.rules_cmd",
    "guardian.cli.replay_cmd",
    "guardian.cli.config_cmd",
    "guardian.cli.notify_cmd",
    "guardian.cli.demo_cmd",
    "guardian.cli.rollback_cmd",
    "guardian.cli.tokens_cmd",
    "guardian.cli.inputs_cmd",
    "guardian.cli.execute_cmd",
)

app = typer.Typer(
    name="guardian",
    help="Rollback Guardian: watches deployments and rolls them back before users notice.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"guardian {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Rollback Guardian: watches deployments and rolls them back before users notice."""


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    """Run the CLI."""
    app()

"""``guardian config``: print the configuration reference or the effective settings."""

from __future__ import annotations

from pathlib import Path

import typer

config_app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``config`` to the CLI."""
    app.add_typer(config_app, name="config")


@config_app.command("reference")
def reference() -> None:
    """Print every setting as a Markdown table (the README's reference)."""
    from guardian.config.reference import reference_table

    typer.echo(reference_table(), nl=False)


@config_app.command("show")
def show(
    config: Path | None = typer.Option(None, "--config", help="YAML settings file."),
) -> None:
    """Print the effective settings (flags aside) as JSON, secrets masked."""
    from guardian.config.settings import load_settings
    from guardian.errors import ConfigError

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        typer.echo(f"guardian: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(settings.model_dump_json(indent=2))

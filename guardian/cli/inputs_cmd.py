"""``guardian inputs``: check an ``inputs.yaml`` and print the default mapping.

``check`` prints every problem as ``file:line:column: field.path: message``
and exits 1 on any, like ``guardian rules check``; ``defaults`` prints the
mapping used when no file is given (a starting point for your own).
"""

from __future__ import annotations

from pathlib import Path

import typer

inputs_app = typer.Typer(
    help="The mapping of OTLP and Prometheus metrics to metric events.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add ``inputs`` to the CLI."""
    app.add_typer(inputs_app, name="inputs")


@inputs_app.command("check")
def check(files: list[Path] = typer.Argument(..., help="inputs.yaml files.")) -> None:
    """Validate mapping files; print every problem with file, line and field path."""
    from guardian.inputs.mapping import InputsError, load_inputs

    problems = 0
    for file in files:
        try:
            mapping = load_inputs(file)
        except InputsError as exc:
            for problem in exc.problems:
                typer.echo(str(problem))
            problems += len(exc.problems)
            continue
        counts = ", ".join(
            f"{name}: {len(section.requests.metrics)} request, "
            f"{len(section.latency.metrics)} latency, {len(section.values)} values, "
            f"{len(section.drop)} drop"
            for name, section in (("otlp", mapping.otlp), ("prometheus", mapping.prometheus))
        )
        typer.echo(f"{file}: OK ({counts})")
    if problems:
        typer.echo(f"{problems} problem(s)", err=True)
        raise typer.Exit(1)


@inputs_app.command("defaults")
def defaults() -> None:
    """Print the default mapping as an inputs.yaml."""
    from guardian.inputs.mapping import DEFAULTS_YAML

    typer.echo(DEFAULTS_YAML, nl=False)

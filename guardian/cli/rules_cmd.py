"""``guardian rules``: check rule files, run rule unit tests, print the JSON Schema.

``check`` prints every problem as ``file:line:column: field.path: message``
and exits 1 on any; ``test`` runs ``*_test.yaml`` files (promtool style) and
prints a diff of expected against actual decisions; ``schema`` prints the
JSON Schema of a rule file for editors. The logic lives in
``guardian.engine``; this module reads files and formats.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

rules_app = typer.Typer(help="Validate and test rule files.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``rules`` to the CLI."""
    app.add_typer(rules_app, name="rules")


@rules_app.command("check")
def check(
    paths: list[Path] = typer.Argument(..., help="Rule files or directories."),
) -> None:
    """Validate rule files; print every problem with file, line and field path."""
    from guardian.engine.rules.loader import RuleError, load_rules
    from guardian.errors import ConfigError

    try:
        rules = load_rules(*paths)
    except RuleError as exc:
        for problem in exc.problems:
            typer.echo(str(problem))
        typer.echo(f"{len(exc.problems)} problem(s)", err=True)
        raise typer.Exit(1) from None
    except ConfigError as exc:
        typer.echo(f"guardian: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{len(rules)} rules OK")


@rules_app.command("test")
def run_tests(
    files: list[Path] = typer.Argument(..., help="Rule test files (*_test.yaml)."),
) -> None:
    """Run rule unit tests; exit 1 with a diff when decisions differ from expectations."""
    from pydantic import ValidationError
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from guardian.engine.rules.loader import load_rules
    from guardian.engine.ruletest import RuleTestFile, run_file
    from guardian.errors import ConfigError

    failed = total = 0
    for file in files:
        try:
            spec = RuleTestFile.model_validate(YAML(typ="safe").load(file.read_text("utf-8")))
            rules = load_rules(*[file.parent / name for name in spec.rule_files])
        except (OSError, YAMLError, ValidationError, ConfigError) as exc:
            typer.echo(f"{file}: cannot run: {exc}")
            failed += 1
            continue
        for result in run_file(rules, spec):
            total += 1
            if result.ok:
                typer.echo(f"PASS {file}: {result.name}")
                continue
            failed += 1
            typer.echo(f"FAIL {file}: {result.name}")
            for line in result.problems:
                typer.echo(f"  {line}")
    typer.echo(f"{total - failed if failed <= total else 0} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


@rules_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of a rule file (for editor validation)."""
    from guardian.engine.rules.model import RuleFile

    typer.echo(json.dumps(RuleFile.model_json_schema(mode="validation"), indent=2))

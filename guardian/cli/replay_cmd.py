"""``guardian replay``: feed a file of v1 events (or an OTLP dump) through the engine.

Each line is decoded exactly as the daemon decodes a record, fed to the
engine in file order, and followed by ``engine.advance(max event time so
far)`` — the daemon does the same per batch, so both make the same decisions.
Decisions are printed as JSONL (``Decision.to_dict``) or a table; lines that
do not decode are reported on stderr with their line number and skipped.
``--explain DEPLOY_ID`` prints the engine's explanation of one deploy instead.
``--input-format otlp-json`` reads OTLP/JSON export requests, one per line
(v1 events may be interleaved), converted as the OTLP bridge converts them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from guardian.gc_tuning import tuned_gc

if TYPE_CHECKING:
    from guardian.engine import Engine
    from guardian.engine.decision import Decision
    from guardian.inputs.mapping import InputsFile
    from guardian.wire.events import InputEvent


def register(app: typer.Typer) -> None:
    """Add ``replay`` to the CLI."""
    app.command("replay")(replay)


def run_replay(
    engine: Engine,
    lines: Iterable[bytes],
    on_bad: Callable[[int, str], None],
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[Decision]:
    """Feed raw lines to ``engine``; yield decisions; report undecodable lines by number."""
    return feed(engine, _decoded(lines, on_bad, on_progress))


def _decoded(
    lines: Iterable[bytes],
    on_bad: Callable[[int, str], None],
    on_progress: Callable[[int], None] | None,
) -> Iterator[InputEvent]:
    from guardian.errors import DecodeError
    from guardian.wire.cdevents import UnusedEventError, decode_record

    for number, line in enumerate(lines, start=1):
        if on_progress is not None and number % 16384 == 0:
            on_progress(number)
        if not line.strip():
            continue
        try:
            yield decode_record(line)  # v1, or a CDEvent (structured or bare) as on deploy.events
        except UnusedEventError:
            continue  # a CloudEvent the guardian does not judge, as the daemon skips it
        except DecodeError as exc:
            on_bad(number, exc.reason)


def feed(engine: Engine, events: Iterable[InputEvent]) -> Iterator[Decision]:
    """Events to ``engine`` in order, advancing event time as the daemon does per batch."""
    process, advance = engine.process, engine.advance
    high = 0
    for event in events:
        decisions = process(event)
        if decisions:
            yield from decisions
        ts = event.timestamp
        if ts > high:
            high = ts
            decided = advance(high)
            if decided:
                yield from decided


def _table(decisions: list[Decision]) -> Any:
    from rich.table import Table

    from guardian.wire.records import format_time

    table = Table("at", "rule", "action", "service", "env", "deploy", "regions", "reason")
    for d in decisions:
        table.add_row(
            format_time(d.at_ms),
            d.rule,
            d.action
            + (" (dry run)" if d.dry_run else "")
            + (" resolved" if d.state == "resolved" else ""),
            d.service,
            d.environment,
            d.deploy_id or "-",
            ",".join(d.regions),
            d.reason,
        )
    return table


def replay(
    events: Path = typer.Argument(..., help="JSONL file of v1 events, as on the topics."),
    input_format: str = typer.Option(
        "v1",
        "--input-format",
        help="v1, or otlp-json: OTLP/JSON export requests, one per line (v1 events may be "
        "interleaved).",
    ),
    inputs: Path | None = typer.Option(
        None, "--inputs", help="inputs.yaml for --input-format otlp-json (default mapping)."
    ),
    rules: Path = typer.Option(Path("rules"), "--rules", help="Rule file or directory."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or table."),
    explain: str | None = typer.Option(None, "--explain", help="Explain one deploy's rules."),
    max_series: int = typer.Option(100_000, "--max-series", help="Cap on tracked series."),
    lateness_ms: int = typer.Option(60_000, "--allowed-lateness-ms", help="Allowed lateness."),
) -> None:
    """Replay events through the rules and print every decision."""
    import orjson

    from guardian.engine import Engine, load_rules
    from guardian.errors import ConfigError

    if fmt not in ("jsonl", "table"):
        typer.echo("guardian: --format must be jsonl or table", err=True)
        raise typer.Exit(2)
    mapping = _otlp_mapping(input_format, inputs)
    try:
        rule_set = load_rules(rules)
    except ConfigError as exc:
        typer.echo(f"guardian: invalid rules:\n{exc}", err=True)
        raise typer.Exit(2) from None
    engine = Engine(rule_set, max_series=max_series, allowed_lateness_ms=lateness_ms)
    bad: list[int] = []

    def on_bad(number: int, reason: str) -> None:
        bad.append(number)
        typer.echo(f"{events}:{number}: skipped: {reason}", err=True)

    try:
        handle = events.open("rb")
    except OSError as exc:
        typer.echo(f"guardian: {exc}", err=True)
        raise typer.Exit(2) from None
    collected: list[Decision] = []
    out = sys.stdout.buffer
    with handle, _Progress(events) as progress, tuned_gc():
        if mapping is None:
            decided = run_replay(engine, handle, on_bad, progress)
        else:
            from guardian.inputs.replay import otlp_json_events

            decided = feed(engine, otlp_json_events(handle, mapping, on_bad, progress, max_series))
        for decision in decided:
            if explain is not None or fmt == "table":
                collected.append(decision)
            else:
                out.write(orjson.dumps(decision.to_dict()) + b"\n")
    out.flush()
    if bad:
        typer.echo(f"{len(bad)} undecodable line(s) skipped", err=True)
    if explain is not None:
        explanation = engine.explain(explain)
        if explanation is None:
            typer.echo(f"guardian: no deploy {explain!r} in these events", err=True)
            raise typer.Exit(1)
        typer.echo(orjson.dumps(explanation, option=orjson.OPT_INDENT_2).decode())
    elif fmt == "table":
        from rich.console import Console

        Console(width=200).print(_table(collected))


def _otlp_mapping(input_format: str, inputs: Path | None) -> InputsFile | None:
    """The mapping for ``--input-format otlp-json``; None for v1; exit 2 when invalid."""
    from guardian.errors import ConfigError
    from guardian.inputs.mapping import load_inputs

    if input_format not in ("v1", "otlp-json"):
        typer.echo("guardian: --input-format must be v1 or otlp-json", err=True)
        raise typer.Exit(2)
    if input_format == "v1":
        return None
    try:
        return load_inputs(inputs)
    except ConfigError as exc:
        typer.echo(f"guardian: invalid inputs file:\n{exc}", err=True)
        raise typer.Exit(2) from None


class _Progress:
    """A rich progress bar on stderr when it is a terminal; otherwise nothing."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._bar: Any = None

    def __enter__(self) -> Callable[[int], None] | None:
        if not sys.stderr.isatty():
            return None
        from rich.progress import Progress

        self._bar = Progress(transient=True, console=None)
        self._bar.start()
        task = self._bar.add_task(f"replaying {self._path.name}", total=None)

        def update(lines: int) -> None:
            self._bar.update(task, completed=lines)

        return update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

"""``guardian execute`` (the reference executor) and ``guardian targets check``.

``execute`` has the daemon's lifecycle: SIGTERM or SIGINT drains (the
current batch is finished or interrupted, flushed and committed), a second
request a moment later exits at once (130), a drain that outlives the grace
period exits 1. Exit codes: 0 after a clean drain, 2 for a configuration
problem (settings, targets.yaml, kubeconfig), 1 for any other fatal error.

``targets check`` prints every problem of a ``targets.yaml`` as
``file:line:column: field.path: message`` and exits 1 on any.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import typer

from guardian.errors import ConfigError, GuardianError

EXIT_CONFIG = 2
EXIT_FATAL = 1
EXIT_FORCED = 130
_REPEAT_WINDOW_S = 1.0

targets_app = typer.Typer(help="Check the executor's targets.yaml.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``execute`` and ``targets`` to the CLI."""
    app.command("execute")(execute)
    app.add_typer(targets_app, name="targets")


@targets_app.command("check")
def check(files: list[Path] = typer.Argument(..., help="targets.yaml files.")) -> None:
    """Validate targets files; print every problem with file, line and field path."""
    from guardian.executor.targets import TargetsError, load_targets

    problems = 0
    for file in files:
        try:
            targets = load_targets(file)
        except TargetsError as exc:
            for problem in exc.problems:
                typer.echo(str(problem))
            problems += len(exc.problems)
            continue
        typer.echo(f"{file}: OK ({len(targets.targets)} targets)")
    if problems:
        typer.echo(f"{problems} problem(s)", err=True)
        raise typer.Exit(1)


def execute(
    config: Path | None = typer.Option(None, "--config", help="YAML settings file."),
    targets: Path | None = typer.Option(None, "--targets", help="targets.yaml."),
    bootstrap_servers: str | None = typer.Option(
        None, "--bootstrap-servers", help="Kafka HOST:PORT,... (required)."
    ),
    kubeconfig: Path | None = typer.Option(
        None, "--kubeconfig", help="kubeconfig; unset = in-cluster, $KUBECONFIG, ~/.kube/config."
    ),
    http: str | None = typer.Option(None, "--http", help="HOST:PORT of health and metrics."),
    group_id: str | None = typer.Option(None, "--group-id", help="The executors' consumer group."),
    dry_run: bool | None = typer.Option(
        None, "--dry-run/--no-dry-run", help="Log what would be done; patch and report nothing."
    ),
) -> None:
    """Apply the guardian's rollback and pause commands to Kubernetes and report the outcome."""
    from guardian.executor.settings import load_executor_settings
    from guardian.logs import configure_logging

    try:
        settings = load_executor_settings(
            config,
            targets_file=targets,
            bootstrap_servers=bootstrap_servers,
            kubeconfig=kubeconfig,
            executor_http=http,
            executor_group_id=group_id,
            dry_run=dry_run,
        )
    except ConfigError as exc:
        typer.echo(f"guardian: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    json_logs = configure_logging(settings.log_level, settings.log_format)
    raise typer.Exit(_serve(settings, plain_errors=not json_logs))


def _serve(settings: object, *, plain_errors: bool) -> int:
    import structlog

    from guardian.executor.service import Executor
    from guardian.executor.settings import ExecutorSettings

    assert isinstance(settings, ExecutorSettings)  # noqa: S101 - narrows the lazily imported type
    log = structlog.get_logger("guardian.cli")
    executor = Executor(settings)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        first_signal_at: float | None = None

        def on_stop_signal(signum: int) -> None:
            nonlocal first_signal_at
            if first_signal_at is not None:
                if loop.time() - first_signal_at < _REPEAT_WINDOW_S:
                    return  # a copy of the first signal (the process group got it too)
                log.warning("forced_exit", signal=signal.Signals(signum).name)
                os._exit(EXIT_FORCED)
            first_signal_at = loop.time()
            log.info("stop_requested", signal=signal.Signals(signum).name)
            executor.request_stop()
            loop.call_later(settings.grace_period_s, _grace_expired)

        def _grace_expired() -> None:
            log.error("grace_period_expired", grace_period_s=settings.grace_period_s)
            os._exit(EXIT_FATAL)

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_stop_signal, signum)
        await executor.run()

    try:
        asyncio.run(main())
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
        return _report_failure(exc, plain_errors=plain_errors)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
    return 0


def _report_failure(exc: Exception, *, plain_errors: bool) -> int:
    import structlog

    log = structlog.get_logger("guardian.cli")
    error: BaseException = exc
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    if isinstance(error, ConfigError):
        log.error("config_invalid", error=str(error))
        if plain_errors:
            print(f"guardian: {error}", file=sys.stderr)  # noqa: T201 - the line an operator reads
        return EXIT_CONFIG
    if isinstance(error, GuardianError):
        log.error("fatal_error", error=str(error))
    else:
        log.error("crashed", error=repr(error), exc_info=exc)
    if plain_errors:
        print(f"guardian: fatal: {error}", file=sys.stderr)  # noqa: T201
    return EXIT_FATAL

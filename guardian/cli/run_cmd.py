"""``guardian run``: start the daemon with flags > environment > config file > defaults.

Exit codes: 0 after a clean drain, 2 for a configuration problem, 1 for any
other fatal error or a drain that outlived the grace period (always with one
clear line on stderr: the log line, plus a plain one on a terminal), 130 when
a second signal forces an immediate exit.

The embedded broker (when no Kafka is configured) lives in its own session,
so a Ctrl-C reaches only the guardian, which stops the broker after it has
drained. Every early way out (grace period over, forced exit, a crash) stops
the broker first; the ``finally`` around the event loop is the last resort.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import typer

from guardian.errors import ConfigError, GuardianError
from guardian.gc_tuning import tune_gc

EXIT_CONFIG = 2
EXIT_FATAL = 1
EXIT_FORCED = 130
# Signals closer together than this are one request delivered twice.
_REPEAT_WINDOW_S = 1.0


def register(app: typer.Typer) -> None:
    """Add ``run`` to the CLI."""
    app.command("run")(run)


def run(
    config: Path | None = typer.Option(None, "--config", help="YAML settings file."),
    bootstrap_servers: str | None = typer.Option(
        None, "--bootstrap-servers", help="Kafka HOST:PORT,...; unset = embedded broker."
    ),
    rules: Path | None = typer.Option(None, "--rules", help="Rule file or directory."),
    subscriptions: Path | None = typer.Option(
        None, "--subscriptions", help="Subscriptions YAML (who hears about what)."
    ),
    http: str | None = typer.Option(None, "--http", help="HOST:PORT of the control plane."),
    group_id: str | None = typer.Option(None, "--group-id", help="Kafka consumer group."),
    tokens: Path | None = typer.Option(None, "--tokens", help="API tokens file (YAML)."),
    mqtt_url: str | None = typer.Option(None, "--mqtt-url", help="mqtt://HOST:PORT source."),
) -> None:
    """Run the guardian daemon (embedded broker when no Kafka is configured)."""
    from guardian.config.settings import load_settings
    from guardian.logs import configure_logging

    try:
        settings = load_settings(
            config,
            bootstrap_servers=bootstrap_servers,
            rules=rules,
            subscriptions=subscriptions,
            http=http,
            group_id=group_id,
            tokens_file=tokens,
            mqtt_url=mqtt_url,
        )
    except ConfigError as exc:
        typer.echo(f"guardian: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    json_logs = configure_logging(settings.log_level, settings.log_format)
    raise typer.Exit(_serve(settings, plain_errors=not json_logs))


def _serve(settings: object, *, plain_errors: bool) -> int:
    import structlog

    from guardian.config.settings import Settings
    from guardian.daemon.app import Daemon

    assert isinstance(settings, Settings)  # noqa: S101 - narrows the lazily imported type
    log = structlog.get_logger("guardian.cli")
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is optional off Linux
        pass
    daemon = Daemon(settings)

    def exit_now(code: int) -> None:
        # os._exit skips every finally and atexit: stop the broker by hand first.
        daemon.stop_broker_now()
        os._exit(code)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        first_signal_at: float | None = None

        def on_stop_signal(signum: int) -> None:
            nonlocal first_signal_at
            if first_signal_at is not None:
                # A copy of the first signal (``timeout`` and some shells signal the process
                # and its group) must not turn the drain into a forced exit; a second
                # request from a person a moment later does.
                if loop.time() - first_signal_at < _REPEAT_WINDOW_S:
                    return
                log.warning("forced_exit", signal=signal.Signals(signum).name)
                exit_now(EXIT_FORCED)
            first_signal_at = loop.time()
            log.info("stop_requested", signal=signal.Signals(signum).name)
            daemon.request_stop()
            # The drain must finish within the grace period, or we leave anyway.
            loop.call_later(settings.grace_period_s, _grace_expired)

        def _grace_expired() -> None:
            log.error("grace_period_expired", grace_period_s=settings.grace_period_s)
            exit_now(EXIT_FATAL)

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_stop_signal, signum)
        loop.add_signal_handler(signal.SIGHUP, daemon.request_reload)
        tune_gc()
        await daemon.run()

    try:
        asyncio.run(main())
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
        return _report_failure(exc, plain_errors=plain_errors)
    finally:
        # The closed loop took its signal handlers with it: a late copy of the stop signal
        # must not kill a process that has drained already (status -SIGTERM instead of 0).
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
        daemon.stop_broker_now()  # a no-op after a clean drain: the daemon stopped it
    return 0


def _report_failure(exc: Exception, *, plain_errors: bool) -> int:
    """Log why the daemon ended (one line; a plain one too on a terminal); the exit code."""
    import structlog

    log = structlog.get_logger("guardian.cli")
    error = _root_cause(exc)
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


def _root_cause(exc: BaseException) -> BaseException:
    """The first real error inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc

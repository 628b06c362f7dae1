"""Structured logging: JSON lines in containers, readable console output on a terminal.

Event names are fixed snake_case strings with key-value context; values whose
key looks secret are redacted by a processor, so a token or password that
slips into a call never reaches a log line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, WrappedLogger

_SECRET_MARKERS = ("password", "token", "secret", "signing_key", "authorization", "api_key")


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Replace the value of any key that names a secret."""
    for key in event_dict:
        lowered = key.lower()
        if any(marker in lowered for marker in _SECRET_MARKERS):
            event_dict[key] = "***"
    return event_dict


class _StderrWriter:
    """Writes each rendered line to whatever ``sys.stderr`` is *now*.

    Binding the stream at configuration time breaks when it is later replaced
    or closed (test runners, ``guardian demo`` inside another program).
    """

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)  # noqa: T201 - this is the log sink

    debug = info = warning = warn = error = critical = exception = fatal = msg


def configure_logging(
    level: str = "info", fmt: Literal["auto", "json", "console"] = "auto"
) -> None:
    """Set up structlog (and stdlib logging of libraries) once per process."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    numeric_level = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=lambda *_args: _StderrWriter(),
        cache_logger_on_first_use=True,
    )
    # Libraries (aiokafka, aiohttp) log through stdlib; keep their noise at warning.
    logging.basicConfig(level=max(numeric_level, logging.WARNING), stream=sys.stderr)

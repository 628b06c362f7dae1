"""Structured logging: JSON lines in containers, readable console output on a terminal.

Event names are fixed snake_case strings with key-value context; values whose
key looks secret are redacted by a processor, so a token or password that
slips into a call never reaches a log line.

Libraries that log through stdlib ``logging`` (aiokafka, aiohttp, asyncio)
and Python warnings go through structlog's ``ProcessorFormatter``: the same
renderer, the same stream, one line each, with the library's logger name in
``logger``. Nothing else writes plain text between the structured lines.
A library line that repeats (aiokafka logs "Unable connect to node" hundreds
of times while a dead broker is being fenced) is written once per
``REPEAT_WINDOW_S``; the next one carries ``suppressed_repeats``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
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


def _write_line(message: str) -> None:
    """Write one rendered line to whatever ``sys.stderr`` is *now*.

    Binding the stream at configuration time breaks when it is later replaced
    or closed (test runners, ``guardian demo`` inside another program).
    """
    print(message, file=sys.stderr, flush=True)  # noqa: T201 - this is the log sink


class _StderrWriter:
    """structlog's sink; ``name`` is what ``add_logger_name`` reports as ``logger``."""

    def __init__(self, name: str = "") -> None:
        self.name = name

    def msg(self, message: str) -> None:
        _write_line(message)

    debug = info = warning = warn = error = critical = exception = fatal = msg


def _writer_for(*args: Any) -> _StderrWriter:
    """``structlog.get_logger(__name__)`` passes the module name here."""
    return _StderrWriter(str(args[0]) if args else "")


class _StderrHandler(logging.Handler):
    """The stdlib handler: each formatted record to the current ``sys.stderr``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _write_line(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


REPEAT_WINDOW_S = 10.0


class RepeatLimiter(logging.Filter):
    """Lets a library's line through once per window; counts what it held back.

    Lines are the same when logger, level and message template match, so one
    message about many nodes or partitions counts as one. The next line let
    through carries the count as ``suppressed`` (rendered ``suppressed_repeats``).
    """

    def __init__(
        self, window_s: float = REPEAT_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last[0] < self._window_s:
                self._seen[key] = (last[0], last[1] + 1)
                return False
            if len(self._seen) > 1000:  # bounded: a flood of distinct lines resets it
                self._seen.clear()
            self._seen[key] = (now, 0)
        record.suppressed = last[1] if last is not None else 0
        return True


def _suppressed_count(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    count = getattr(record, "suppressed", 0)
    if count:
        event_dict["suppressed_repeats"] = count
    return event_dict


def configure_logging(
    level: str = "info", fmt: Literal["auto", "json", "console"] = "auto"
) -> bool:
    """Set up structlog and route stdlib logging into it; True when lines are JSON.

    Safe to call again: the previous stdlib handler is replaced, not doubled.
    """
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    numeric_level = logging.getLevelName(level.upper())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=_writer_for,
        # Not cached: a logger first used under one configuration would keep it, and
        # capture_logs (tests) or a later configure_logging would not reach it.
        cache_logger_on_first_use=False,
    )
    handler = _StderrHandler()
    handler.addFilter(RepeatLimiter(REPEAT_WINDOW_S))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _suppressed_count],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    # Libraries (aiokafka, aiohttp) log through stdlib; keep their noise at warning.
    root.setLevel(max(numeric_level, logging.WARNING))
    logging.captureWarnings(True)  # warnings.warn(...) become records of "py.warnings"
    return use_json

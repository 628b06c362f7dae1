"""Structured logs: JSON lines, secrets redacted, the current stderr used, libraries routed in."""

from __future__ import annotations

import io
import logging
import sys
import time
import warnings
from collections.abc import Iterator

import orjson
import pytest
import structlog

from guardian.logs import RepeatLimiter, configure_logging


@pytest.fixture(autouse=True)
def _restore_stdlib_logging() -> Iterator[None]:
    """configure_logging changes the root logger and warning capture; put them back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    logging.captureWarnings(False)
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_redact_secrets_and_follow_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each line is JSON with fixed event names; secret-looking keys are masked."""
    configure_logging("info", "json")
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    structlog.get_logger("t").info("token_used", slack_token="xoxb-1", service="checkout")
    line = orjson.loads(first.getvalue().splitlines()[-1])
    assert line["event"] == "token_used"
    assert line["slack_token"] == "***"
    assert line["service"] == "checkout"
    first.close()  # a replaced, closed stream must not break later log calls
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    structlog.get_logger("t").warning("still_logging", smtp_password="hunter2")
    assert "hunter2" not in second.getvalue()
    assert "still_logging" in second.getvalue()


def test_debug_is_filtered_at_info_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """Below the configured level nothing is written."""
    configure_logging("info", "console")
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    structlog.get_logger("t").debug("noise")
    assert stream.getvalue() == ""


def test_a_library_warning_is_one_json_line_with_its_logger_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``logging.getLogger("aiokafka").warning(...)`` comes out as JSON with ``logger``."""
    configure_logging("info", "json")
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    logging.getLogger("aiokafka").warning("Unable connect to node with id %s", 111)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    line = orjson.loads(lines[0])
    assert line["logger"] == "aiokafka"
    assert line["event"] == "Unable connect to node with id 111"
    assert line["level"] == "warning"
    assert "timestamp" in line


def test_library_exceptions_and_guardian_lines_share_the_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A library traceback stays inside its JSON line; guardian's own lines name their module."""
    configure_logging("info", "json")
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        raise ConnectionError("refused")
    except ConnectionError:
        logging.getLogger("asyncio").exception("Unclosed connection")
    structlog.get_logger("guardian.daemon.app").info("drained", watermark_ms=0)
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["logger"] for line in lines] == ["asyncio", "guardian.daemon.app"]
    assert "ConnectionError: refused" in lines[0]["exception"]
    assert lines[1]["event"] == "drained"


def test_library_info_is_filtered_and_secrets_are_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Libraries speak from warning up; their extra fields pass the same redaction."""
    configure_logging("info", "json")
    configure_logging("info", "json")  # configuring twice must not double every line
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    logging.getLogger("aiohttp.access").info("GET /readyz 200")
    logging.getLogger("aiokafka").error("auth failed", extra={"sasl_password": "hunter2"})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "hunter2" not in lines[0]


def test_python_warnings_become_log_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``warnings.warn`` that is shown is a structured line of ``py.warnings``."""
    configure_logging("info", "json")
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("old api", DeprecationWarning, stacklevel=1)
    line = orjson.loads(stream.getvalue().splitlines()[-1])
    assert line["logger"] == "py.warnings"
    assert "old api" in line["event"]


def test_console_output_on_a_terminal_names_the_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the console renderer a library line is one readable line with its logger."""
    configure_logging("info", "console")
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    logging.getLogger("aiokafka").warning("Unable to update metadata")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "Unable to update metadata" in lines[0]
    assert "aiokafka" in lines[0]


def test_a_repeated_library_line_is_written_once_per_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hundreds of "Unable connect" lines in a window become one, the next one counts them."""
    configure_logging("info", "json")
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    library = logging.getLogger("aiokafka")
    for node in range(300):
        library.error("Unable connect to node with id %s", node)
    library.error("a different line")
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "Unable connect to node with id 0",
        "a different line",
    ]
    assert "suppressed_repeats" not in lines[0]


def test_the_limiter_lets_a_line_through_again_after_the_window_with_its_count() -> None:
    """After the window the line passes again, carrying how many were held back."""
    now = [0.0]
    limiter = RepeatLimiter(window_s=10, clock=lambda: now[0])

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("aiokafka", logging.ERROR, "f.py", 1, message, ("x",), None)

    assert limiter.filter(record("Unable connect to %s"))
    assert not limiter.filter(record("Unable connect to %s"))
    assert not limiter.filter(record("Unable connect to %s"))
    now[0] = 10.5
    again = record("Unable connect to %s")
    assert limiter.filter(again)
    assert getattr(again, "suppressed", None) == 2


def test_the_line_after_the_window_renders_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """The JSON line let through after the window says how many repeats it stands for."""
    monkeypatch.setattr("guardian.logs.REPEAT_WINDOW_S", 0.05)
    configure_logging("info", "json")
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    library = logging.getLogger("aiokafka")
    for node in range(5):
        library.error("Unable connect to node with id %s", node)
    time.sleep(0.06)
    library.error("Unable connect to node with id %s", 9)
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    assert lines[1]["suppressed_repeats"] == 4

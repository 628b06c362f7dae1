"""Structured logs: JSON lines, secrets redacted, the current stderr used, libraries routed in."""

from __future__ import annotations

import io
import logging
import sys
import warnings
from collections.abc import Iterator

import orjson
import pytest
import structlog

from guardian.logs import configure_logging


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

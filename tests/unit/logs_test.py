"""Structured logs: JSON lines, secrets redacted, the current stderr used."""

from __future__ import annotations

import io
import sys

import orjson
import pytest
import structlog

from guardian.logs import configure_logging


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

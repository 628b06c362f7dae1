"""Output records: time format, dead-letter truncation (signatures: signing_test.py)."""

from __future__ import annotations

import base64

from guardian.wire.records import DeadLetter, DeadLetterSource, format_time


def test_format_time_is_rfc3339_with_milliseconds() -> None:
    """Output timestamps are UTC with millisecond precision and a Z suffix."""
    assert format_time(1795478400123) == "2026-11-24T00:00:00.123Z"


def test_dead_letter_keeps_small_originals_whole() -> None:
    """A small original is kept byte for byte and not marked truncated."""
    letter = DeadLetter.wrap(
        source=DeadLetterSource(transport="kafka", topic="t", partition=1, offset=7),
        reason="bad",
        original=b"\x00\xffabc",
        received_at_ms=1795478400000,
        max_original_bytes=1024,
    )
    assert base64.b64decode(letter.original_b64) == b"\x00\xffabc"
    assert not letter.truncated
    assert letter.original_size == 5


def test_dead_letter_truncates_oversized_originals_and_says_so() -> None:
    """An original over the limit is cut to the limit, and the letter records its real size."""
    letter = DeadLetter.wrap(
        source=DeadLetterSource(transport="mqtt", topic="guardian/x"),
        reason="r" * 5000,
        original=b"x" * 5000,
        received_at_ms=1795478400000,
        max_original_bytes=1024,
    )
    assert letter.truncated
    assert len(base64.b64decode(letter.original_b64)) == 1024
    assert letter.original_size == 5000
    assert len(letter.reason) == 2000

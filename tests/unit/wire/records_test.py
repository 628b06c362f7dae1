"""Output records: time format, dead-letter truncation, signatures."""

from __future__ import annotations

import base64

from guardian.wire.records import DeadLetter, DeadLetterSource, format_time
from guardian.wire.signing import canonical_json, sign, verify


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


def test_signature_round_trip_and_tamper_detection() -> None:
    """A signed record verifies with its key, and not after a change or with another key."""
    record = {"command_id": "rb-1", "deploy_id": "d", "b": [1, 2], "a": {"z": 1, "y": 2}}
    signed = {**record, "signature": sign(record, b"k")}
    assert verify(signed, b"k")
    assert not verify(signed, b"other")
    assert not verify({**signed, "deploy_id": "d2"}, b"k")
    assert not verify(record, b"k")


def test_canonical_json_is_sorted_compact_and_ignores_signature() -> None:
    """The signed bytes have sorted keys, no whitespace and no signature field."""
    assert canonical_json({"b": 1, "a": [1, 2], "signature": "x"}) == b'{"a":[1,2],"b":1}'

"""Decoding of v1 input events: what is accepted, and the reason for what is not."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardian.errors import DecodeError
from guardian.wire.events import (
    MAX_RECORD_BYTES,
    CheckEvent,
    DeployEvent,
    MetricEvent,
    decode_event,
    encode_event,
)

DEPLOY = {
    "kind": "deploy",
    "type": "started",
    "deploy_id": "d-8812",
    "service": "checkout",
    "environment": "production",
    "version": "2.4.1",
    "previous_version": "2.4.0",
    "strategy": "canary",
    "component": "application",
    "regions": ["us-east"],
    "traffic_percent": 5,
    "timestamp": "2026-11-24T10:00:00Z",
    "actor": "ci",
}
METRIC = {
    "kind": "metric",
    "service": "checkout",
    "environment": "production",
    "region": "us-east",
    "cohort": "canary",
    "version": "2.4.1",
    "timestamp": 1795478400000,
    "values": {"requests": 1200, "errors": 13, "latency_p95_ms": 182.0},
}
CHECK = {
    "kind": "check",
    "service": "checkout",
    "environment": "production",
    "region": "us-east",
    "deploy_id": "d-8812",
    "check": "api_health",
    "status": "fail",
    "detail": "5/5 probes timed out",
    "timestamp": "2026-11-24T10:03:00Z",
}


def _bytes(obj: object) -> bytes:
    return orjson.dumps(obj)


def test_deploy_event_decodes_with_rfc3339_time() -> None:
    """A deploy event from DESIGN.md decodes and its timestamp becomes epoch milliseconds."""
    event = decode_event(_bytes(DEPLOY))
    assert isinstance(event, DeployEvent)
    assert event.timestamp == 1795514400000
    assert event.regions == ["us-east"]
    assert event.strategy == "canary"


def test_metric_event_decodes_with_epoch_ms() -> None:
    """A metric event with an epoch-ms timestamp decodes with its values as floats."""
    event = decode_event(_bytes(METRIC))
    assert isinstance(event, MetricEvent)
    assert event.timestamp == 1795478400000
    assert event.values["errors"] == 13.0


def test_check_event_decodes() -> None:
    """A check event decodes with its status."""
    event = decode_event(_bytes(CHECK))
    assert isinstance(event, CheckEvent)
    assert event.status == "fail"


def test_unknown_fields_are_ignored() -> None:
    """Fields the contract does not know are ignored, not rejected."""
    event = decode_event(_bytes({**METRIC, "team": "payments", "extra": {"a": [1]}}))
    assert isinstance(event, MetricEvent)


def test_naive_timestamp_is_read_as_utc() -> None:
    """A timestamp without an offset is taken as UTC, whatever the machine's timezone."""
    event = decode_event(_bytes({**CHECK, "timestamp": "2026-11-24T10:03:00"}))
    assert event.timestamp == decode_event(_bytes(CHECK)).timestamp


def test_round_trip_encoding() -> None:
    """An encoded event decodes to an equal event."""
    event = decode_event(_bytes(DEPLOY))
    assert decode_event(encode_event(event)) == event


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe garbage", "not valid JSON"),
        (b"[1, 2]", "Expected `object`"),
        (_bytes({**METRIC, "kind": "weather"}), "Invalid value 'weather'"),
        (_bytes({k: v for k, v in METRIC.items() if k != "kind"}), "missing required field `kind`"),
        (_bytes({k: v for k, v in METRIC.items() if k != "service"}), "`service`"),
        (_bytes({**METRIC, "service": 42}), "$.service"),
        (_bytes({**METRIC, "values": {"errors": "many"}}), "$.values"),
        (_bytes({**METRIC, "timestamp": True}), "boolean"),
        (_bytes({**METRIC, "timestamp": "yesterday"}), "not an RFC 3339 timestamp"),
        (_bytes({**METRIC, "timestamp": [1]}), "got list"),
        (_bytes({**METRIC, "timestamp": 10}), "outside 2000-01-01..2100-01-01"),
        (_bytes({**METRIC, "timestamp": 9e15}), "outside"),
        (_bytes({**METRIC, "values": {"requests": -1}}), "requests must not be negative"),
        (_bytes({**METRIC, "values": {"errors": -1}}), "errors must not be negative"),
        (_bytes({**METRIC, "values": {"requests": 5, "errors": 6}}), "must not exceed"),
        (b'{"kind":"metric","values":{"x":NaN}}', "not valid JSON"),
        (
            b'{"kind":"metric","service":"a","environment":"p",'
            b'"timestamp":1795478400000,"values":{"x":1e400}}',
            "out of range",
        ),
        (_bytes({**METRIC, "service": ""}), "$.service"),
        (_bytes({**METRIC, "service": "s" * 300}), "$.service"),
        (_bytes({**DEPLOY, "type": "exploded"}), "$.type"),
        (_bytes({**DEPLOY, "regions": ["r"] * 100}), "$.regions"),
        (_bytes({**CHECK, "status": "maybe"}), "$.status"),
        (b"[" * 5000 + b"]" * 5000, "invalid event"),
        (b" " * (MAX_RECORD_BYTES + 1), "exceeds"),
    ],
)
def test_invalid_records_are_rejected_with_a_precise_reason(payload: bytes, reason: str) -> None:
    """Each kind of bad input raises DecodeError whose reason says what is wrong and where."""
    with pytest.raises(DecodeError) as info:
        decode_event(payload)
    assert reason in info.value.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_never_escape_as_other_errors(payload: bytes) -> None:
    """Arbitrary bytes either decode or raise DecodeError, never anything else."""
    with contextlib.suppress(DecodeError):
        decode_event(payload)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([DEPLOY, METRIC, CHECK]),
    st.sampled_from(["timestamp", "service", "values", "type", "regions", "status", "kind"]),
    _json,
)
def test_wrong_shapes_never_escape_as_other_errors(
    base: dict[str, object], field: str, value: object
) -> None:
    """Replacing any field of a valid event with arbitrary JSON yields an event or a DecodeError."""
    with contextlib.suppress(DecodeError):
        decode_event(orjson.dumps({**base, field: value}))

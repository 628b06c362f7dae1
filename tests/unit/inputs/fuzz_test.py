"""Hostile input for every decoder: a clear DecodeError or valid events, never anything else."""

from __future__ import annotations

import contextlib
import math

import cramjam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardian.errors import DecodeError
from guardian.inputs.cumulative import SeriesState
from guardian.inputs.mapping import InputsFile, compile_mapping
from guardian.inputs.otlp import OtlpConverter, decode_otlp
from guardian.inputs.remote_write import (
    RemoteWriteConverter,
    decode_write_request,
    encode_write_request,
)
from guardian.wire.events import decode_event, encode_event
from tests.unit.inputs.builders import CANARY, T0_MS, export, histogram, write_request

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = st.sampled_from(
    ["http_requests_total", "http_request_duration_seconds_bucket", "up", "x" * 300]
)
LABEL_NAMES = st.sampled_from(["job", "service", "environment", "cohort", "code", "le", "region"])
LABEL_VALUES = st.one_of(
    st.sampled_from(["checkout", "production", "canary", "blue", "500", "200", "+Inf", "0.1"]),
    st.text(max_size=400),
)
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -1.0, 1e308, math.nan]),
)
TIMES = st.one_of(st.integers(T0_MS, T0_MS + 600_000), st.integers(-(2**63), 2**63 - 1))


def _valid(events: list) -> None:  # type: ignore[type-arg]
    for event in events:
        assert decode_event(encode_event(event)) == event


def _remote_write() -> RemoteWriteConverter:
    return RemoteWriteConverter(
        compile_mapping(InputsFile().prometheus), SeriesState(max_series=50)
    )


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bodies_are_refused_cleanly(body: bytes) -> None:
    """Arbitrary bytes never raise anything but DecodeError."""
    with contextlib.suppress(DecodeError):
        decode_write_request(body)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_protobuf_in_valid_snappy_is_refused_cleanly(payload: bytes) -> None:
    """Valid snappy around garbage (a truncated or random WriteRequest)."""
    with contextlib.suppress(DecodeError):
        decode_write_request(bytes(cramjam.snappy.compress_raw(payload)))


@FUZZ
@given(st.integers(0, 400), st.binary(min_size=1, max_size=1))
def test_truncated_and_flipped_bodies_are_refused_cleanly(cut: int, flip: bytes) -> None:
    """A real body cut short or with one byte changed."""
    body = encode_write_request(
        write_request(
            [
                (
                    {"__name__": "http_requests_total", **CANARY, "job": "c", "code": "500"},
                    [(T0_MS, 1.0)],
                )
            ]
        )
    )
    for mangled in (body[:cut], body[:cut] + flip + body[cut + 1 :]):
        with contextlib.suppress(DecodeError):
            decode_write_request(mangled)


SERIES = st.lists(
    st.tuples(
        st.dictionaries(LABEL_NAMES, LABEL_VALUES, max_size=7).map(lambda d: d),
        NAMES,
        st.lists(st.tuples(TIMES, VALUES), max_size=5),
    ),
    max_size=8,
)


@FUZZ
@given(SERIES)
def test_any_write_request_converts_to_valid_events(series: list) -> None:  # type: ignore[type-arg]
    """Huge labels, NaN, negative counters, absurd times: counted, never raised; events are v1."""
    conv = _remote_write()
    request = write_request(
        [({**labels, "__name__": name}, samples) for labels, name, samples in series]
    )
    for _ in range(2):
        result, batch = conv.convert(decode_write_request(encode_write_request(request)))
        batch.commit()
        _valid(result.events)
        assert result.samples == sum(len(samples) for _, _, samples in series)
    assert len(conv.state) <= 50


def test_a_huge_label_set_is_converted_with_a_bounded_key() -> None:
    """Thousands of labels on one series: one event, a 16-byte state key."""
    labels = {f"l{i:05d}": "v" * 50 for i in range(5000)}
    series = {"__name__": "http_requests_total", **labels, "job": "c", "environment": "p"}
    conv = _remote_write()
    for ts, value in ((T0_MS, 1.0), (T0_MS + 1000, 3.0)):
        result, batch = conv.convert(
            decode_write_request(encode_write_request(write_request([(series, [(ts, value)])])))
        )
        batch.commit()
    assert result.events[0].values == {"requests": 2, "errors": 0}
    assert len(conv.state) == 1


@FUZZ
@given(st.binary(max_size=2048), st.sampled_from(["otlp_proto", "otlp_json"]))
def test_random_otlp_records_are_refused_cleanly(data: bytes, encoding: str) -> None:
    """Arbitrary bytes as OTLP protobuf or JSON."""
    with contextlib.suppress(DecodeError):
        decode_otlp(data, encoding)  # type: ignore[arg-type]


@FUZZ
@given(st.integers(0, 300), st.binary(min_size=1, max_size=1))
def test_truncated_otlp_records_are_refused_or_converted(cut: int, flip: bytes) -> None:
    """A real export cut short or with one byte changed: DecodeError, or valid events."""
    data = export(
        CANARY,
        [histogram([({"http.response.status_code": 500}, 3, [1] * 15)], at_ms=T0_MS, delta=True)],
    ).SerializeToString()
    conv = OtlpConverter(compile_mapping(InputsFile().otlp), SeriesState(max_series=50))
    for mangled in (data[:cut], data[:cut] + flip + data[cut + 1 :]):
        try:
            request = decode_otlp(mangled)
        except DecodeError:
            continue
        result, batch = conv.convert(request)
        batch.commit()
        _valid(result.events)


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, 2**64 - 1), st.lists(st.integers(0, 2**64 - 1), max_size=16)),
        max_size=4,
    ),
    st.lists(st.floats(allow_nan=True), max_size=15),
    st.integers(0, 2**64 - 1),
    st.dictionaries(st.sampled_from(list(CANARY)), LABEL_VALUES, max_size=5),
)
def test_any_otlp_histogram_converts_to_valid_events(
    points: list[tuple[int, list[int]]], bounds: list[float], at_ns: int, resource: dict[str, str]
) -> None:
    """Counts that do not fit the bounds, NaN bounds, absurd times: counted, never raised."""
    metric = histogram([({}, count, counts) for count, counts in points], at_ms=0, bounds=bounds)
    for point in metric.histogram.data_points:
        point.time_unix_nano = at_ns
    conv = OtlpConverter(compile_mapping(InputsFile().otlp), SeriesState(max_series=50))
    for _ in range(2):
        result, batch = conv.convert(export({**CANARY, **resource}, [metric]))
        batch.commit()
        _valid(result.events)


ONE_SAMPLE = st.lists(
    st.tuples(
        st.dictionaries(LABEL_NAMES, LABEL_VALUES, max_size=7),
        NAMES,
        st.tuples(TIMES, VALUES),
    ),
    max_size=8,
)


@FUZZ
@given(st.lists(ONE_SAMPLE, min_size=1, max_size=3))
def test_bodies_read_by_label_bytes_convert_as_parsed_in_full(scrapes: list) -> None:  # type: ignore[type-arg]
    """Series of one sample (Prometheus' shape), cached by label bytes: the same as a full parse."""
    fast, full = _remote_write(), _remote_write()
    for series in scrapes:
        request = write_request(
            [({**labels, "__name__": name}, [sample]) for labels, name, sample in series]
        )
        body = encode_write_request(request)
        for _ in range(2):  # the second read finds every series in the cache
            expected, full_batch = full.convert(decode_write_request(body))
            found, fast_batch = fast.convert(fast.read(body))
            assert (found.events, found.samples, found.skipped) == (
                expected.events,
                expected.samples,
                expected.skipped,
            )
            full_batch.commit()
            fast_batch.commit()


@FUZZ
@given(st.integers(0, 400), st.binary(min_size=1, max_size=1))
def test_mangled_bodies_read_by_label_bytes_fail_as_a_full_parse(cut: int, flip: bytes) -> None:
    """A known series' body cut or flipped: read refuses exactly the bodies a full parse does."""
    labels = {"__name__": "http_requests_total", **CANARY, "job": "c", "code": "500"}
    conv = _remote_write()
    body = encode_write_request(write_request([(labels, [(T0_MS, 1.0)])]))
    conv.convert(conv.read(body))
    raw = bytes(cramjam.snappy.decompress_raw(body))
    for mangled in (raw[:cut], raw[:cut] + flip + raw[cut + 1 :]):
        compressed = bytes(cramjam.snappy.compress_raw(mangled))
        try:
            expected = conv.convert(decode_write_request(compressed))[0]
        except DecodeError:
            with pytest.raises(DecodeError):
                conv.read(compressed)
            continue
        found = conv.convert(conv.read(compressed))[0]
        assert (found.events, found.samples, found.skipped) == (
            expected.events,
            expected.samples,
            expected.skipped,
        )

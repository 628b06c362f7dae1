"""Remote-write bodies: decoding, and series into per-scrape metric events."""

from __future__ import annotations

import math
import struct

import cramjam
import pytest

from guardian.errors import DecodeError
from guardian.inputs.cumulative import SeriesState
from guardian.inputs.mapping import compile_mapping, parse_inputs
from guardian.inputs.remote_write import (
    RemoteWriteConverter,
    decode_write_request,
    encode_write_request,
)
from guardian.wire.events import MetricEvent, decode_event, encode_event
from tests.unit.inputs.builders import T0_MS, write_request

STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
CANARY = {"job": "checkout", "environment": "production", "cohort": "canary", "instance": "a:1"}


def converter(yaml: str = "") -> RemoteWriteConverter:
    mapping = parse_inputs(yaml)
    section = compile_mapping(mapping.prometheus, mapping.max_interval)
    return RemoteWriteConverter(section, SeriesState(max_interval_ms=section.max_interval_ms))


def scrapes(conv: RemoteWriteConverter, *requests: list) -> list[MetricEvent]:  # type: ignore[type-arg]
    """Convert requests in turn (committing each); all events."""
    events: list[MetricEvent] = []
    for series in requests:
        result, batch = conv.convert(
            decode_write_request(encode_write_request(write_request(series)))
        )
        batch.commit()
        events.extend(result.events)
    return events


def requests_series(
    code: str, *samples: tuple[int, float]
) -> tuple[dict[str, str], list[tuple[int, float]]]:
    return ({"__name__": "http_requests_total", "code": code, **CANARY}, list(samples))


def test_request_counters_by_code_become_requests_and_errors_per_scrape() -> None:
    """Increments per scrape; 5xx codes are errors; the first scrape is the baseline."""
    events = scrapes(
        converter(),
        [
            requests_series("200", (T0_MS, 100), (T0_MS + 1000, 190)),
            requests_series("503", (T0_MS, 5), (T0_MS + 1000, 15)),
            requests_series("5xx", (T0_MS, 0), (T0_MS + 1000, 1)),
        ],
    )
    assert len(events) == 1
    event = events[0]
    assert event.timestamp == T0_MS + 1000
    assert (event.service, event.environment, event.cohort) == ("checkout", "production", "canary")
    assert event.values == {"requests": 101, "errors": 11}
    assert decode_event(encode_event(event)) == event


def test_a_counter_that_goes_down_is_a_restart_not_a_negative_rate() -> None:
    """After a reset the increment is what was counted since."""
    events = scrapes(
        converter(),
        [requests_series("200", (T0_MS, 1000), (T0_MS + 1000, 1100), (T0_MS + 2000, 40))],
    )
    assert [e.values["requests"] for e in events] == [100, 40]


def test_a_retried_request_gives_the_same_events_until_committed() -> None:
    """The state advances only on commit: Prometheus' retry converts identically."""
    conv = converter()
    scrapes(conv, [requests_series("200", (T0_MS, 100))])
    body = write_request([requests_series("200", (T0_MS + 1000, 150))])
    first, _not_written = conv.convert(body)
    retry, batch = conv.convert(body)
    batch.commit()
    assert first.events == retry.events
    again, _ = conv.convert(body)
    assert again.events == []
    assert again.skipped == {"out_of_order": 1}


def bucket_series(
    le: str, *samples: tuple[int, float]
) -> tuple[dict[str, str], list[tuple[int, float]]]:
    return ({"__name__": "http_request_duration_seconds_bucket", "le": le, **CANARY}, list(samples))


def test_latency_buckets_become_quantiles_in_milliseconds() -> None:
    """Bucket increments per scrape, interpolated like histogram_quantile."""
    events = scrapes(
        converter(),
        [
            bucket_series("0.1", (T0_MS, 0), (T0_MS + 1000, 50)),
            bucket_series("0.2", (T0_MS, 0), (T0_MS + 1000, 100)),
            bucket_series("+Inf", (T0_MS, 0), (T0_MS + 1000, 100)),
        ],
    )
    assert events[0].values == {
        "latency_p95_ms": pytest.approx(190.0),
        "latency_p99_ms": pytest.approx(198.0),
    }


def test_milliseconds_histograms_are_not_scaled() -> None:
    """A ``_milliseconds`` histogram is already in ms."""
    conv = converter("prometheus:\n  latency:\n    metrics: [rpc_duration_milliseconds_bucket]\n")
    name = "rpc_duration_milliseconds_bucket"
    events = scrapes(
        conv,
        [
            ({"__name__": name, "le": "100", **CANARY}, [(T0_MS, 0), (T0_MS + 1000, 10)]),
            ({"__name__": name, "le": "+Inf", **CANARY}, [(T0_MS, 0), (T0_MS + 1000, 10)]),
        ],
    )
    assert events[0].values["latency_p95_ms"] == pytest.approx(95.0)


@pytest.mark.parametrize(
    ("labels", "value", "reason"),
    [
        ({"__name__": "go_goroutines", **CANARY}, 5.0, "unmapped_metric"),
        ({"__name__": "http_requests_total", "environment": "production"}, 1.0, "no_service"),
        ({"__name__": "http_requests_total", "job": "checkout"}, 1.0, "no_environment"),
        ({"__name__": "http_requests_total", **CANARY, "cohort": "blue"}, 1.0, "unknown_cohort"),
        ({"__name__": "http_requests_total", **CANARY}, math.nan, "not_finite"),
        ({"__name__": "http_requests_total", **CANARY}, math.inf, "not_finite"),
        ({"__name__": "http_requests_total", **CANARY}, -5.0, "negative_counter"),
        ({"__name__": "http_requests_total", **CANARY}, STALE, "ended"),
        ({"__name__": "http_request_duration_seconds_bucket", **CANARY}, 1.0, "unsupported_type"),
    ],
)
def test_samples_left_out_are_counted_by_reason(
    labels: dict[str, str], value: float, reason: str
) -> None:
    """Nothing is converted and the reason is counted once per sample."""
    result, _ = converter().convert(write_request([(labels, [(T0_MS, value)])]))
    assert result.events == []
    assert result.skipped == {reason: 1}
    assert result.samples == 1


def test_a_sample_outside_the_v1_time_range_is_rejected() -> None:
    """Event times before 2000 or after 2100 are not v1 timestamps."""
    result, _ = converter().convert(write_request([requests_series("200", (5, 1.0))]))
    assert result.skipped == {"bad_timestamp": 1}


def test_the_mapping_file_sets_labels_defaults_values_and_drops() -> None:
    """Other label names, a default environment, gauges and counters into values, drop rules."""
    conv = converter(
        "prometheus:\n"
        "  labels: {service: [app]}\n"
        "  environment: staging\n"
        "  values:\n"
        "    cpu_utilization: {metrics: [process_cpu_ratio]}\n"
        "    restarts: {metrics: [restarts_total]}\n"
        "    queue: {metrics: [queue_depth_total], kind: gauge}\n"
        "  drop: [{metric: process_*, labels: {instance: 'b:*'}}]\n"
    )
    base = {"app": "cart"}
    events = scrapes(
        conv,
        [
            ({"__name__": "process_cpu_ratio", **base}, [(T0_MS, 0.25), (T0_MS + 1000, 0.75)]),
            ({"__name__": "process_cpu_ratio", **base, "instance": "b:2"}, [(T0_MS + 1000, 9)]),
            ({"__name__": "restarts_total", **base}, [(T0_MS, 2), (T0_MS + 1000, 3)]),
            ({"__name__": "queue_depth_total", **base}, [(T0_MS + 1000, 7)]),
        ],
    )
    assert [(e.service, e.environment, e.timestamp, e.values) for e in events] == [
        ("cart", "staging", T0_MS, {"cpu_utilization": 0.25}),
        ("cart", "staging", T0_MS + 1000, {"cpu_utilization": 0.75, "restarts": 1, "queue": 7}),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "snappy"),
        (b"\x89PNG garbage", "snappy"),
        (bytes(cramjam.snappy.compress(b"framed, not block")), "snappy"),
        (bytes(cramjam.snappy.compress_raw(b"\x0a\xff\xff\xff")), "WriteRequest"),
        (b"\xff\xff\xff\xff\x0f", "limit"),
        (b"\x05abc", "snappy"),
        (b"\x80\x80\x80\x80\x08", "limit"),
    ],
)
def test_unreadable_bodies_are_decode_errors(body: bytes, message: str) -> None:
    """Bad snappy, truncated protobuf and size bombs are refused with a reason."""
    with pytest.raises(DecodeError, match=message):
        decode_write_request(body)


def one_sample_scrapes(conv: RemoteWriteConverter, *scrapes: list) -> list[MetricEvent]:  # type: ignore[type-arg]
    """Convert scrapes as Prometheus sends them (one sample per series) through ``read``."""
    events: list[MetricEvent] = []
    for series in scrapes:
        request = write_request([(labels, [sample]) for labels, sample in series])
        result, batch = conv.convert(conv.read(encode_write_request(request)))
        batch.commit()
        events.extend(result.events)
    return events


def test_series_read_by_label_bytes_count_zero_values_and_repeat_scrapes() -> None:
    """Prometheus' shape (a value of 0 is left out on the wire): the same events as a full parse."""
    ok = {"__name__": "http_requests_total", **CANARY, "code": "200"}
    bad = {**ok, "code": "500"}
    scrape_at = [
        [(ok, (T0_MS + 10_000 * i, 100.0 * i)), (bad, (T0_MS + 10_000 * i, float(i // 2)))]
        for i in range(4)
    ]
    assert [e.values for e in one_sample_scrapes(converter(), *scrape_at)] == [
        {"requests": 100, "errors": 0},
        {"requests": 101, "errors": 1},
        {"requests": 100, "errors": 0},
    ]


@pytest.mark.parametrize("at_ms", [0, 5, T0_MS * 100, 2**62])
def test_timestamps_of_other_widths_are_read_by_a_full_parse(at_ms: int) -> None:
    """Times whose varint is not six bytes take the full parse and give the same skips."""
    conv = converter()
    body = encode_write_request(write_request([requests_series("200", (at_ms, 1.0))]))
    expected, _ = conv.convert(decode_write_request(body))
    found, _ = conv.convert(conv.read(body))
    assert (
        (found.skipped, found.samples)
        == (expected.skipped, expected.samples)
        == (
            {"bad_timestamp": 1},
            1,
        )
    )


def test_unreadable_metadata_refuses_the_body_as_a_full_parse_does() -> None:
    """A metadata entry that is not a MetricMetadata (bad UTF-8) makes the body unreadable."""
    raw = b"\x1a\x03\x12\x01\xff"  # metadata { metric_family_name: "\xff" }
    body = bytes(cramjam.snappy.compress_raw(raw))
    with pytest.raises(DecodeError):
        decode_write_request(body)
    with pytest.raises(DecodeError, match="WriteRequest"):
        converter().read(body)

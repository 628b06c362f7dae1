"""OTLP export requests: decoding, semantic conventions, temporality and restarts."""

from __future__ import annotations

import math

import pytest
from google.protobuf import json_format
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

from guardian.errors import DecodeError
from guardian.inputs.cumulative import SeriesState
from guardian.inputs.mapping import compile_mapping, parse_inputs
from guardian.inputs.otlp import OtlpConverter, decode_otlp
from guardian.wire.events import MetricEvent, decode_event, encode_event
from tests.unit.inputs.builders import (
    CANARY,
    T0_MS,
    SdkService,
    counter,
    export,
    gauge,
    histogram,
)

OK = {"http.response.status_code": 200}
FAIL = {"http.response.status_code": 503}
EMPTY = [0] * 15


def converter(yaml: str = "", started_ms: int = T0_MS) -> OtlpConverter:
    mapping = parse_inputs(yaml)
    section = compile_mapping(mapping.otlp, mapping.max_interval)
    return OtlpConverter(section, SeriesState(max_interval_ms=section.max_interval_ms), started_ms)


def run(conv: OtlpConverter, *requests: object) -> list[MetricEvent]:
    events: list[MetricEvent] = []
    for request in requests:
        result, batch = conv.convert(decode_otlp(request.SerializeToString()))  # type: ignore[attr-defined]
        batch.commit()
        events.extend(result.events)
    return events


def buckets(**at: int) -> list[int]:
    """Bucket counts with ``b<i>=n`` set (index into BOUNDS_S, 14 = +Inf)."""
    counts = list(EMPTY)
    for name, n in at.items():
        counts[int(name[1:])] = n
    return counts


def test_cumulative_histograms_give_requests_errors_and_latency_per_interval() -> None:
    """Count → requests, 5xx points → errors, buckets → p95/p99, as increments."""
    conv = converter()
    first = histogram([(OK, 90, buckets(b3=90)), (FAIL, 10, buckets(b7=10))], at_ms=T0_MS)
    second = histogram(
        [(OK, 180, buckets(b3=180)), (FAIL, 30, buckets(b7=30))], at_ms=T0_MS + 10_000
    )
    events = run(conv, export(CANARY, [first]), export(CANARY, [second]))
    assert len(events) == 1  # the first export is the baseline of series that started earlier
    event = events[0]
    assert (event.service, event.environment, event.region, event.cohort, event.version) == (
        "checkout",
        "production",
        "us-east",
        "canary",
        "2.4.1",
    )
    assert event.timestamp == T0_MS + 10_000
    assert event.values["requests"] == 110
    assert event.values["errors"] == 20
    # 90 in (0.025, 0.05], 20 in (0.25, 0.5]: rank 104.5 lies in the second: 0.25 + 0.25 * 14.5/20
    assert event.values["latency_p95_ms"] == pytest.approx(431.25)
    assert decode_event(encode_event(event)) == event


def test_a_series_that_started_after_the_converter_counts_its_first_export() -> None:
    """A fresh canary pod's first export is not lost to the baseline."""
    conv = converter(started_ms=T0_MS)
    start = T0_MS + 1000
    events = run(
        conv,
        export(CANARY, [histogram([(OK, 5, buckets(b3=5))], at_ms=start + 10_000, start_ms=start)]),
    )
    assert events[0].values["requests"] == 5


def test_a_new_start_time_is_a_restart() -> None:
    """After a process restart the point counts since its new start."""
    conv = converter(started_ms=T0_MS + 10**9)
    old, new = T0_MS - 100_000, T0_MS + 5_000
    events = run(
        conv,
        export(CANARY, [histogram([(OK, 1000, buckets(b3=1000))], at_ms=T0_MS, start_ms=old)]),
        export(
            CANARY, [histogram([(OK, 4000, buckets(b3=4000))], at_ms=T0_MS + 10_000, start_ms=new)]
        ),
    )
    assert events[0].values["requests"] == 4000


def test_delta_temporality_passes_through() -> None:
    """Delta points are increments already: the first one counts."""
    conv = converter()
    events = run(
        conv, export(CANARY, [histogram([(FAIL, 4, buckets(b2=4))], at_ms=T0_MS, delta=True)])
    )
    assert events[0].values["requests"] == 4
    assert events[0].values["errors"] == 4


def test_error_type_marks_errors_and_attributes_can_carry_roles() -> None:
    """``error.type`` is an error; a role missing from the resource is read from the point."""
    conv = converter()
    resource = {"service.name": "cart"}
    attrs = {"deployment.environment": "staging", "error.type": "timeout"}
    events = run(
        conv, export(resource, [histogram([(attrs, 2, buckets(b1=2))], at_ms=T0_MS, delta=True)])
    )
    assert (events[0].environment, events[0].values["errors"]) == ("staging", 2)


def test_gauges_and_sums_feed_values() -> None:
    """Gauges as they are, monotonic sums as increments, non-monotonic sums as levels."""
    conv = converter(
        "otlp:\n  values:\n"
        "    cpu_utilization: {metrics: [process.cpu.utilization]}\n"
        "    gc: {metrics: [runtime.gc.count]}\n"
        "    queue: {metrics: [queue.size]}\n"
    )
    events = run(
        conv,
        export(
            CANARY,
            [
                gauge("process.cpu.utilization", 0.5, at_ms=T0_MS),
                counter("runtime.gc.count", 10, at_ms=T0_MS),
                counter("queue.size", 3, at_ms=T0_MS, monotonic=False),
            ],
        ),
        export(CANARY, [counter("runtime.gc.count", 14, at_ms=T0_MS + 1000)]),
    )
    assert [e.values for e in events] == [
        {"cpu_utilization": 0.5, "queue": 3},
        {"gc": 4},
    ]


def test_a_counter_as_request_metric() -> None:
    """A request counter (a sum) works like the histogram's count."""
    conv = converter("otlp:\n  requests:\n    metrics: [http.requests]\n    status: [code]\n")
    events = run(
        conv,
        export(CANARY, [counter("http.requests", 7, at_ms=T0_MS, attrs={"code": 500}, delta=True)]),
    )
    assert events[0].values == {"requests": 7, "errors": 7}


def unsupported() -> Metric:
    metric = Metric(name="http.server.request.duration")
    metric.exponential_histogram.data_points.add(time_unix_nano=T0_MS * 1_000_000, count=3)
    return metric


@pytest.mark.parametrize(
    ("resource", "metric", "reason"),
    [
        (CANARY, gauge("jvm.threads", 3, at_ms=T0_MS), "unmapped_metric"),
        (
            {"deployment.environment.name": "production"},
            histogram([(OK, 1, buckets(b1=1))], at_ms=T0_MS),
            "no_service",
        ),
        ({"service.name": "x"}, histogram([(OK, 1, buckets(b1=1))], at_ms=T0_MS), "no_environment"),
        (
            {**CANARY, "deployment.cohort": "blue"},
            histogram([(OK, 1, buckets(b1=1))], at_ms=T0_MS),
            "unknown_cohort",
        ),
        (CANARY, histogram([(OK, 1, buckets(b1=1))], at_ms=1), "bad_timestamp"),
        (CANARY, histogram([(OK, 1, [1, 0])], at_ms=T0_MS), "unsupported_type"),
        (CANARY, unsupported(), "unsupported_type"),
        (CANARY, counter("http.server.request.duration", math.nan, at_ms=T0_MS), "not_finite"),
        (CANARY, counter("http.server.request.duration", -1, at_ms=T0_MS), "negative_counter"),
    ],
)
def test_points_left_out_are_counted_by_reason(
    resource: dict[str, str], metric: Metric, reason: str
) -> None:
    """Nothing converted; one count per point under its reason."""
    result, _ = converter().convert(export(resource, [metric]))
    assert result.events == []
    assert result.skipped == {reason: 1}


def test_rejected_points_make_one_reason_for_the_dead_letter() -> None:
    """Mappable points still count; the others are summed up in one sentence."""
    request = export(CANARY, [histogram([(OK, 1, buckets(b1=1))], at_ms=T0_MS, delta=True)])
    request.resource_metrics.extend(
        export({"x": 1}, [histogram([(OK, 1, buckets(b1=1))], at_ms=T0_MS)]).resource_metrics
    )
    result, _ = converter().convert(request)
    assert len(result.events) == 1
    assert result.rejection_reason() == "1 of 2 samples not mapped: no_service=1"


def test_no_recorded_value_ends_a_series() -> None:
    """A point flagged as having no value forgets the series."""
    conv = converter()
    metric = histogram([(OK, 1, buckets(b1=1))], at_ms=T0_MS)
    metric.histogram.data_points[0].flags = 1
    result, _batch = conv.convert(export(CANARY, [metric]))
    assert result.skipped == {"ended": 1}


def test_otlp_json_is_decoded_like_protobuf() -> None:
    """The exporter's otlp_json encoding (camelCase, int64 as strings)."""
    request = export(CANARY, [histogram([(OK, 3, buckets(b1=3))], at_ms=T0_MS, delta=True)])
    text = json_format.MessageToJson(request).encode()
    assert decode_otlp(text, "otlp_json") == request


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (b"\x0a\x05\x0a\x03", "otlp_proto"),
        (b"\xff" * 10, "otlp_proto"),
        (b"{not json", "otlp_json"),
        (b'{"resourceMetrics": 5}', "otlp_json"),
        (b"\xc3\x28", "otlp_json"),
    ],
)
def test_unreadable_records_are_decode_errors(data: bytes, encoding: str) -> None:
    """Truncated protobuf and broken JSON are refused with a reason."""
    with pytest.raises(DecodeError, match="ExportMetricsServiceRequest"):
        decode_otlp(data, encoding)  # type: ignore[arg-type]


def test_records_built_by_the_opentelemetry_sdk() -> None:
    """The SDK's cumulative exports convert to the rates that were recorded."""
    service = SdkService(CANARY)
    conv = converter(started_ms=0)
    try:
        service.serve(100, error_rate=0.1, latency_s=0.3)
        events = run(conv, service.export())
        service.serve(200, error_rate=0.25, latency_s=0.04)
        events += run(conv, service.export())
    finally:
        service.shutdown()
    assert [(e.values["requests"], e.values["errors"]) for e in events] == [(100, 10), (200, 50)]
    assert events[0].values["latency_p95_ms"] > 250
    assert events[1].values["latency_p95_ms"] < 50

"""Builders of OTLP and remote-write inputs for tests: by hand, and with the OpenTelemetry SDK."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from guardian.inputs.prompb.remote_pb2 import WriteRequest

T0_MS = 1795478400000  # 2026-11-24T00:00:00Z
CANARY = {
    "service.name": "checkout",
    "deployment.environment.name": "production",
    "cloud.region": "us-east",
    "deployment.cohort": "canary",
    "service.version": "2.4.1",
}
BOUNDS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def attributes(values: Mapping[str, Any]) -> list[KeyValue]:
    """OTLP attributes from a dict (str, int, float and bool values)."""
    out = []
    for key, value in values.items():
        if isinstance(value, bool):
            any_value = AnyValue(bool_value=value)
        elif isinstance(value, int):
            any_value = AnyValue(int_value=value)
        elif isinstance(value, float):
            any_value = AnyValue(double_value=value)
        else:
            any_value = AnyValue(string_value=str(value))
        out.append(KeyValue(key=key, value=any_value))
    return out


def export(resource: Mapping[str, Any], metrics: Iterable[Metric]) -> ExportMetricsServiceRequest:
    """One export request of one resource."""
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.extend(attributes(resource))
    resource_metrics.scope_metrics.add().metrics.extend(metrics)
    return request


def histogram(
    points: Sequence[tuple[Mapping[str, Any], int, Sequence[int]]],
    *,
    at_ms: int,
    start_ms: int = T0_MS - 3_600_000,
    name: str = "http.server.request.duration",
    unit: str = "s",
    bounds: Sequence[float] = BOUNDS_S,
    delta: bool = False,
) -> Metric:
    """A histogram metric: points of (attributes, count, bucket counts)."""
    metric = Metric(name=name, unit=unit)
    metric.histogram.aggregation_temporality = (
        AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
        if delta
        else AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    )
    for attrs, count, buckets in points:
        metric.histogram.data_points.append(
            HistogramDataPoint(
                attributes=attributes(attrs),
                start_time_unix_nano=start_ms * 1_000_000,
                time_unix_nano=at_ms * 1_000_000,
                count=count,
                bucket_counts=list(buckets),
                explicit_bounds=list(bounds),
            )
        )
    return metric


def counter(
    name: str,
    value: float,
    *,
    at_ms: int,
    start_ms: int = T0_MS - 3_600_000,
    attrs: Mapping[str, Any] | None = None,
    delta: bool = False,
    monotonic: bool = True,
) -> Metric:
    """A sum metric with one point."""
    metric = Metric(name=name)
    metric.sum.is_monotonic = monotonic
    metric.sum.aggregation_temporality = (
        AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
        if delta
        else AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    )
    metric.sum.data_points.append(
        NumberDataPoint(
            attributes=attributes(attrs or {}),
            start_time_unix_nano=start_ms * 1_000_000,
            time_unix_nano=at_ms * 1_000_000,
            as_double=value,
        )
    )
    return metric


def gauge(name: str, value: float, *, at_ms: int, attrs: Mapping[str, Any] | None = None) -> Metric:
    """A gauge metric with one point."""
    metric = Metric(name=name)
    metric.gauge.data_points.append(
        NumberDataPoint(
            attributes=attributes(attrs or {}), time_unix_nano=at_ms * 1_000_000, as_double=value
        )
    )
    return metric


class SdkService:
    """One service instrumented with the OpenTelemetry SDK, exported on demand (cumulative)."""

    def __init__(self, resource: Mapping[str, Any]) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(
            metric_readers=[self.reader], resource=Resource.create(dict(resource))
        )
        meter = self.provider.get_meter("tests")
        self.duration = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            explicit_bucket_boundaries_advisory=list(BOUNDS_S),
        )

    def serve(self, requests: int, *, error_rate: float, latency_s: float) -> None:
        """Record ``requests`` requests, the first ``error_rate`` of them as 503s."""
        errors = round(requests * error_rate)
        for i in range(requests):
            if i < errors:
                self.duration.record(
                    latency_s, {"http.response.status_code": 503, "error.type": "503"}
                )
            else:
                self.duration.record(latency_s, {"http.response.status_code": 200})

    def export(self) -> ExportMetricsServiceRequest:
        """Collect and encode as the SDK's OTLP exporter would."""
        data = self.reader.get_metrics_data()
        assert data is not None
        return encode_metrics(data)

    def shutdown(self) -> None:
        """Stop the SDK."""
        self.provider.shutdown()


def write_request(
    series: Iterable[tuple[Mapping[str, str], Sequence[tuple[int, float]]]],
) -> WriteRequest:
    """A remote-write request: series of (labels incl. __name__, [(ts_ms, value)])."""
    request = WriteRequest()
    for labels, samples in series:
        ts = request.timeseries.add()
        for name in sorted(labels):
            ts.labels.add(name=name, value=labels[name])
        for at_ms, value in samples:
            ts.samples.add(timestamp=at_ms, value=value)
    return request

"""OTLP metrics (the OpenTelemetry Collector's Kafka exporter) into v1 metric events.

``decode_otlp`` reads one Kafka record: ``otlp_proto`` is a serialized
``ExportMetricsServiceRequest`` (the exporter's default), ``otlp_json`` the
same message in OTLP/JSON; anything else is a ``DecodeError``.

``OtlpConverter`` maps it by ``inputs.yaml``'s ``otlp:`` section and the
semantic conventions: resource ``service.name`` is the service,
``deployment.environment.name`` the environment and so on (a role missing
from the resource is looked up on the data point). The request histogram
(``http.server.request.duration``) gives ``requests`` (its count), ``errors``
(the count of points whose ``http.response.status_code`` is 5xx or that carry
``error.type``) and, from its buckets, ``latency_p95_ms``/``latency_p99_ms``.
Mapped gauges and sums feed ``values``.

Temporality: delta points are increments already; cumulative sums and
histograms go through ``SeriesState`` (restarts are a new start time or a
value going down). A series whose start time is after the converter started
and within one interval of its first point counts in full (a fresh canary
pod's first export is not lost); others start from a baseline. Points marked
"no recorded value" end their series. Exponential histograms and summaries
of mapped metrics are rejected (``unsupported_type``). Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate, pairwise
from typing import TYPE_CHECKING, Literal

from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from guardian.errors import DecodeError
from guardian.inputs.assemble import (
    Conversion,
    EventAssembler,
    Identity,
    check_identity,
)
from guardian.inputs.cumulative import SeriesState, StateBatch, series_key
from guardian.inputs.mapping import Mapping, Target
from guardian.wire.events import MAX_EVENT_TIME_MS, MIN_EVENT_TIME_MS

if TYPE_CHECKING:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.metrics.v1.metrics_pb2 import (
        HistogramDataPoint,
        Metric,
        NumberDataPoint,
        ResourceMetrics,
    )

Encoding = Literal["otlp_proto", "otlp_json"]
MAX_RECORD_BYTES = 16 * 1024 * 1024
_DELTA = 1  # AGGREGATION_TEMPORALITY_DELTA
_NO_RECORDED_VALUE = 1  # DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_UNIT_MS = {"s": 1000.0, "ms": 1.0, "us": 0.001, "ns": 0.000001, "min": 60_000.0}


def decode_otlp(data: bytes, encoding: Encoding = "otlp_proto") -> ExportMetricsServiceRequest:
    """One record as an ``ExportMetricsServiceRequest``; ``DecodeError`` says why not."""
    if len(data) > MAX_RECORD_BYTES:
        raise DecodeError(f"record of {len(data)} bytes exceeds {MAX_RECORD_BYTES}")
    try:
        if encoding == "otlp_json":
            return json_format.Parse(
                data, ExportMetricsServiceRequest(), ignore_unknown_fields=True
            )
        return ExportMetricsServiceRequest.FromString(data)
    except (
        json_format.ParseError,
        ProtobufDecodeError,
        RecursionError,
        ValueError,
        TypeError,
    ) as exc:
        raise DecodeError(f"not an OTLP ExportMetricsServiceRequest ({encoding}): {exc}") from None


def _text(value: AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return str(value.int_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "double_value":
        return repr(value.double_value)
    return ""  # arrays, maps and bytes never name a service or a status


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, str]:
    return {pair.key: _text(pair.value) for pair in pairs}


def _is_error(attrs: dict[str, str], mapping: Mapping) -> bool:
    for name in mapping.status_labels:
        status = attrs.get(name)
        if status is not None:
            if status.isdigit() and int(status) >= mapping.error_status:
                return True
            break
    return any(attrs.get(name) for name in mapping.error_labels)


@dataclass(slots=True)
class _Pass:
    """One metric of one request: what its points feed, and where."""

    name: str
    targets: tuple[Target, ...]
    delta: bool
    monotonic: bool
    scale_ms: float
    batch: StateBatch
    assembler: EventAssembler
    skipped: Counter[str]


@dataclass(slots=True)
class _Resource:
    """A resource's attributes, worked out once: its state key and the roles it names."""

    attributes: dict[str, str]
    key: str | bytes
    roles: list[str | None]
    identity: Identity | str  # when no data point attribute names a role
    point_roles: frozenset[str]  # attribute names a data point may fill a missing role with


_CACHE_LIMIT = 4096
_Key = tuple[str | bytes, str, str | bytes]  # a series' state key: resource, metric, attributes
_Items = tuple[tuple[str, str], ...]  # a data point's attributes, in their order
_PointPlan = tuple[_Key, Identity, bool]  # state key, identity, whether its requests are errors


class OtlpConverter:
    """Turns OTLP export requests into metric events through one ``SeriesState``."""

    def __init__(self, mapping: Mapping, state: SeriesState, started_ms: int = 0) -> None:
        self.mapping = mapping
        self.state = state
        self._started_ms = started_ms
        # The same resources and bounds come back in every export: work them out once.
        self._resources: dict[bytes, _Resource] = {}
        self._bounds: dict[tuple[float, ...], bool] = {}
        # Per (resource, metric, point attributes): what its points are; as bounded as the state.
        self._plans: dict[tuple[str | bytes, str, _Items], _PointPlan | str] = {}
        self._plan_limit = min(state.max_series, 100_000)

    def convert(self, request: ExportMetricsServiceRequest) -> tuple[Conversion, StateBatch]:
        """The events of one export request, and the state updates to commit with them."""
        result = Conversion()
        batch = self.state.batch()
        assembler = EventAssembler(self.mapping.quantiles)
        for resource_metrics in request.resource_metrics:
            resource = self._resource(
                resource_metrics.resource.SerializeToString(), resource_metrics
            )
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    self._metric(metric, resource, batch, assembler, result)
        result.events = assembler.events(result.skipped)
        if batch.out_of_order:
            result.skipped["out_of_order"] += batch.out_of_order
        return result, batch

    def _resource(self, raw: bytes, resource_metrics: ResourceMetrics) -> _Resource:
        found = self._resources.get(raw)
        if found is not None:
            return found
        mapping = self.mapping
        attributes = _attributes(resource_metrics.resource.attributes)
        roles = [
            next((attributes[n] for n in names if attributes.get(n)), None)
            for _, names in mapping.roles
        ]
        found = _Resource(
            attributes=attributes,
            key=series_key(
                "\x00" + "\xff".join(f"{k}\xfe{v}" for k, v in sorted(attributes.items()))
            ),
            roles=roles,
            identity=self._identity(roles, {}),
            point_roles=frozenset(
                n
                for (_, names), role in zip(mapping.roles, roles, strict=True)
                if role is None
                for n in names
            ),
        )
        if len(self._resources) >= _CACHE_LIMIT:
            self._resources.clear()
        self._resources[raw] = found
        return found

    def _metric(
        self,
        metric: Metric,
        resource: _Resource,
        batch: StateBatch,
        assembler: EventAssembler,
        result: Conversion,
    ) -> None:
        kind = metric.WhichOneof("data")
        if kind is None:
            return
        data = getattr(metric, kind)
        points = data.data_points
        result.samples += len(points)
        name = metric.name
        mapping = self.mapping
        targets = mapping.targets.get(name)
        skipped = result.skipped
        if targets is None:
            skipped["unmapped_metric"] += len(points)
            return
        if kind not in ("histogram", "sum", "gauge"):
            skipped["unsupported_type"] += len(points)
            return
        run = _Pass(
            name=name,
            targets=targets,
            delta=kind != "gauge" and data.aggregation_temporality == _DELTA,
            monotonic=kind == "histogram" or (kind == "sum" and data.is_monotonic),
            scale_ms=self._latency_scale(metric.unit),
            batch=batch,
            assembler=assembler,
            skipped=skipped,
        )
        plans, plan_for = self._plans, self._plan
        for point in points:
            pairs = point.attributes
            items = tuple([(pair.key, _text(pair.value)) for pair in pairs]) if pairs else ()
            plan = plans.get((resource.key, name, items))
            if plan is None:
                plan = plan_for(resource, name, items)
            if isinstance(plan, str):
                skipped[plan] += 1
                continue
            key, identity, error = plan
            ts = point.time_unix_nano // 1_000_000
            if not MIN_EVENT_TIME_MS <= ts <= MAX_EVENT_TIME_MS:
                skipped["bad_timestamp"] += 1
                continue
            if point.flags & _NO_RECORDED_VALUE:
                batch.forget(key)
                skipped["ended"] += 1
                continue
            start = point.start_time_unix_nano // 1_000_000
            fresh = (
                start > 0 and self._started_ms <= start and ts - start <= mapping.max_interval_ms
            )
            if kind == "histogram":
                self._histogram(point, key, ts, start, fresh, identity, error, run)
            else:
                self._number(point, key, ts, start, fresh, identity, error, run)

    def _number(
        self,
        point: NumberDataPoint,
        key: _Key,
        ts: int,
        start: int,
        fresh: bool,
        identity: Identity,
        error: bool,
        run: _Pass,
    ) -> None:
        value = point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)
        if not math.isfinite(value):
            run.skipped["not_finite"] += 1
            return
        if run.monotonic:
            if value < 0:
                run.skipped["negative_counter"] += 1
                return
            increment = value if run.delta else run.batch.increment(key, ts, value, start, fresh)
            if increment is None:
                return
            value = increment
        for target in run.targets:
            if target.kind == "requests":
                run.assembler.requests(identity, ts, value, error)
            elif target.kind == "value":
                run.assembler.value(identity, ts, target.key, value, run.monotonic)
            else:
                run.skipped["unsupported_type"] += 1

    def _histogram(
        self,
        point: HistogramDataPoint,
        key: _Key,
        ts: int,
        start: int,
        fresh: bool,
        identity: Identity,
        error: bool,
        run: _Pass,
    ) -> None:
        counts = (point.count, *point.bucket_counts)
        bounds = (*point.explicit_bounds, math.inf)
        if len(counts) != len(bounds) + 1 and len(counts) != 1:
            run.skipped["unsupported_type"] += 1  # bucket counts do not fit the bounds
            return
        increments = counts if run.delta else run.batch.increments(key, ts, counts, start, fresh)
        if increments is None:
            return
        for target in run.targets:
            if target.kind == "requests":
                run.assembler.requests(identity, ts, increments[0], error)
            elif target.kind == "latency" and len(increments) > 1:
                cumulative = list(accumulate(increments[1:]))
                if self._increasing(bounds):
                    run.assembler.buckets(identity, ts, run.name, run.scale_ms, bounds, cumulative)
                else:
                    for bound, count in zip(bounds, cumulative, strict=True):
                        run.assembler.bucket(identity, ts, run.name, run.scale_ms, bound, count)
            elif target.kind == "value":
                run.skipped["unsupported_type"] += 1

    def _plan(self, resource: _Resource, name: str, items: _Items) -> _PointPlan | str:
        """What a data point of these attributes is: its state key, identity and error flag."""
        mapping = self.mapping
        attrs = dict(items)
        found: _PointPlan | str
        if mapping.drop and mapping.dropped(name, {**resource.attributes, **attrs}):
            found = "dropped"
        else:
            point_roles = resource.point_roles
            identity = (
                self._identity(resource.roles, attrs)
                if point_roles and not point_roles.isdisjoint(attrs)
                else resource.identity
            )
            if isinstance(identity, str):
                found = identity
            else:
                key = (
                    resource.key,
                    name,
                    series_key("\xff".join(f"{k}\xfe{v}" for k, v in sorted(attrs.items()))),
                )
                found = (key, identity, _is_error(attrs, mapping))
        if len(self._plans) >= self._plan_limit:
            self._plans.clear()
        self._plans[resource.key, name, items] = found
        return found

    def _increasing(self, bounds: tuple[float, ...]) -> bool:
        known = self._bounds.get(bounds)
        if known is None:
            known = all(a < b for a, b in pairwise(bounds))
            if len(self._bounds) >= _CACHE_LIMIT:
                self._bounds.clear()
            self._bounds[bounds] = known
        return known

    def _identity(self, roles: list[str | None], attrs: dict[str, str]) -> Identity | str:
        mapping = self.mapping
        found = list(roles)
        for index, (_, names) in enumerate(mapping.roles):
            if found[index] is None and attrs:
                found[index] = next((attrs[n] for n in names if attrs.get(n)), None)
        return check_identity(
            found[0], found[1] or mapping.default_environment, found[2], found[3], found[4]
        )

    def _latency_scale(self, unit: str) -> float:
        configured = self.mapping.latency_unit
        if configured != "auto":
            return _UNIT_MS[configured]
        return _UNIT_MS.get(unit, 1000.0)  # semantic conventions: durations in seconds

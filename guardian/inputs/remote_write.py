"""Prometheus remote write 1.0 bodies into v1 metric events.

A body is snappy **block** format (not framed), then a protobuf
``prometheus.WriteRequest``; anything else is a ``DecodeError`` (the HTTP
route answers 400, which Prometheus does not retry). The uncompressed size is
read from the snappy header and refused above ``MAX_UNCOMPRESSED_BYTES``
before anything is allocated. ``RemoteWriteConverter.read`` is what the route
calls: it finds each series in the converter's cache by its label bytes
(``remote_wire``) and keeps the request column-wise (``WriteSamples``),
parsing in full only series it has not seen; it refuses exactly the bodies
``decode_write_request`` (the full parse, for tests and tools) refuses.

``RemoteWriteConverter`` maps each series by ``inputs.yaml``'s
``prometheus:`` section: the request counter's increments per scrape become
``requests`` (and ``errors`` for 5xx codes), the ``_bucket`` series of the
latency histogram become bucket increments and then p95/p99, other mapped
series feed ``values`` (names ending in ``_total`` are counters unless the
file says otherwise). Series that no mapping names are counted as
``unmapped_metric`` and skipped: most of what Prometheus scrapes (``up``,
``go_*``, ``process_*``) is of no use to a rule. Staleness markers end a
series. Remote write 1.0 carries no metric types and no start times, so a
counter reset is recognised only by its value going down.

Limits: samples of one scrape split across two requests become two events
with the same timestamp (the engine keeps both unless they are identical);
native histograms and exemplars are ignored. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import cramjam
from google.protobuf.message import DecodeError as ProtobufDecodeError

from guardian.errors import DecodeError
from guardian.inputs.assemble import (
    Buckets,
    Conversion,
    EventAssembler,
    Identity,
    check_identity,
)
from guardian.inputs.cumulative import SeriesState, StateBatch, series_key
from guardian.inputs.mapping import Mapping, Target
from guardian.inputs.prompb.remote_pb2 import TimeSeries, WriteRequest
from guardian.inputs.remote_wire import SampleSplitter, split_envelope
from guardian.wire.events import MAX_EVENT_TIME_MS, MIN_EVENT_TIME_MS

MAX_UNCOMPRESSED_BYTES = 64 * 1024 * 1024
# Prometheus marks a series that disappeared with this NaN (value.StaleNaN).
_STALE_NAN = struct.pack("<Q", 0x7FF0000000000002)
_PROTOBUF_ERRORS = (ProtobufDecodeError, RecursionError, ValueError)


def _uncompress(body: bytes) -> bytes:
    """A snappy block body uncompressed, refused above ``MAX_UNCOMPRESSED_BYTES`` first."""
    try:
        size = cramjam.snappy.decompress_raw_len(body)
    except cramjam.DecompressionError as exc:
        raise DecodeError(f"not snappy block format: {exc}") from None
    if size > MAX_UNCOMPRESSED_BYTES:
        raise DecodeError(
            f"body claims {size} uncompressed bytes, over the {MAX_UNCOMPRESSED_BYTES} limit"
        )
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise DecodeError(f"not snappy block format: {exc}") from None


def decode_write_request(body: bytes) -> WriteRequest:
    """A remote-write body as a ``WriteRequest``; ``DecodeError`` says why it cannot be read."""
    raw = _uncompress(body)
    try:
        return WriteRequest.FromString(raw)
    except _PROTOBUF_ERRORS as exc:
        raise DecodeError(f"not a remote-write WriteRequest protobuf: {exc}") from None


def encode_write_request(request: WriteRequest) -> bytes:
    """A ``WriteRequest`` as a remote-write body (tests and benchmarks)."""
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def _is_stale(value: float) -> bool:
    return struct.pack("<d", value) == _STALE_NAN


def _status_is_error(status: str, threshold: int) -> bool:
    if status.isdigit():
        return int(status) >= threshold
    # "5xx" style classes, as some exporters label them
    return len(status) == 3 and status[0].isdigit() and int(status[0]) * 100 >= threshold


def _latency_scale(unit: str, name: str) -> float:
    if unit == "ms" or (unit == "auto" and "_milliseconds" in name):
        return 1.0
    return 1000.0  # seconds, Prometheus' base unit


class _Sum:
    """Where a request's increments of one identity (and histogram) are summed.

    One object per (identity, histogram name), shared by the series that feed
    it, so the sums of a request are keyed by it and a time: a hash by
    identity instead of hashing the identity's five labels for every sample.
    """

    __slots__ = ("histogram", "identity", "scale_ms")

    def __init__(self, identity: Identity, histogram: str = "", scale_ms: float = 1000.0) -> None:
        self.identity = identity
        self.histogram = histogram
        self.scale_ms = scale_ms


@dataclass(slots=True)
class _SeriesPlan:
    """What the samples of one series feed."""

    counter: bool = False  # samples are cumulative: feed their increments
    requests: bool | None = None  # a request counter; True when its status is an error
    le: float | None = None  # a latency bucket's upper bound
    scale_ms: float = 1000.0
    values: list[tuple[str, bool]] = field(default_factory=list)  # (values key, is counter)
    sums: _Sum | None = None  # where requests and errors are summed
    buckets: _Sum | None = None  # where bucket increments are summed


# A series' name, v1 identity, plan and state key: worked out once per series.
_Prepared = tuple[str, Identity, _SeriesPlan, Hashable]


@dataclass(slots=True)
class WriteSamples:
    """A request read against the converter's series cache: per sample, its series and reading.

    Column-wise (three parallel lists), so a request of thousands of series
    builds no object per sample; samples of series that are skipped whatever
    their values (unmapped, no service...) are only counted.
    """

    series: list[_Prepared] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    samples: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


# Summed by convert, handed to the assembler once per event: [requests, errors] per
# (identity, time), and bucket increments by bound per (identity and histogram, time).
_Totals = dict[tuple[_Sum, int], list[float]]
_BucketTotals = dict[tuple[_Sum, int], Buckets]


def _sum(
    request: WriteSamples, batch: StateBatch, assembler: EventAssembler, skipped: Counter[str]
) -> tuple[_Totals, _BucketTotals]:
    """A request's samples as increments, summed per event (values go to the assembler)."""
    increment, reserve = batch.increment, assembler.reserve
    totals: _Totals = {}
    buckets: _BucketTotals = {}
    for prepared, value, ts in zip(request.series, request.values, request.times, strict=True):
        _name, identity, plan, key = prepared
        if not math.isfinite(value):
            if _is_stale(value):
                batch.forget(key)
                skipped["ended"] += 1
            else:
                skipped["not_finite"] += 1
            continue
        if not MIN_EVENT_TIME_MS <= ts <= MAX_EVENT_TIME_MS:
            skipped["bad_timestamp"] += 1
            continue
        counted = 0.0
        if plan.counter:
            if value < 0:
                skipped["negative_counter"] += 1
                continue
            found = increment(key, ts, value)
            if found is None:
                continue
            counted = found
        sums = plan.sums
        if sums is not None:
            entry = totals.get((sums, ts))
            if entry is None:
                entry = totals[sums, ts] = [0.0, 0.0]
                reserve(identity, ts)
            entry[0] += counted
            if plan.requests:
                entry[1] += counted
        sums, le = plan.buckets, plan.le
        if sums is not None and le is not None:
            by_bound = buckets.get((sums, ts))
            if by_bound is None:
                by_bound = buckets[sums, ts] = {}
                reserve(identity, ts)
            by_bound[le] = by_bound.get(le, 0.0) + counted
        for value_key, is_counter in plan.values:
            assembler.value(identity, ts, value_key, counted if is_counter else value, is_counter)
    return totals, buckets


class RemoteWriteConverter:
    """Turns remote-write requests into metric events through one ``SeriesState``."""

    def __init__(self, mapping: Mapping, state: SeriesState) -> None:
        self.mapping = mapping
        self.state = state
        self._le_cache: dict[str, float] = {}
        # Every scrape sends the same series again; the cache is as bounded as the state.
        # Keyed by a series' label bytes when it comes in Prometheus' shape, else by its
        # labels as text (bytes and str keys never meet).
        self._prepared: dict[str | bytes, _Prepared | str] = {}
        self._cache_limit = min(state.max_series, 100_000)
        self._splitter = SampleSplitter()
        self._sums: dict[tuple[Identity, str], _Sum] = {}

    def read(self, body: bytes) -> WriteSamples:
        """A remote-write body read for ``convert``; ``DecodeError`` says why it cannot be."""
        return self._read(split_envelope(_uncompress(body)))

    def convert(self, request: WriteRequest | WriteSamples) -> tuple[Conversion, StateBatch]:
        """The events of one request, and the state updates to commit once they are written."""
        if isinstance(request, WriteRequest):
            request = self._read(split_envelope(request.SerializeToString()))
        result = Conversion(samples=request.samples, skipped=Counter(request.skipped))
        batch = self.state.batch()
        assembler = EventAssembler(self.mapping.quantiles)
        totals, buckets = _sum(request, batch, assembler, result.skipped)
        for (sums, ts), (requests, errors) in totals.items():
            assembler.request_totals(sums.identity, ts, requests, errors)
        for (sums, ts), by_bound in buckets.items():
            assembler.bucket_totals(sums.identity, ts, sums.histogram, sums.scale_ms, by_bound)
        result.events = assembler.events(result.skipped)
        if batch.out_of_order:
            result.skipped["out_of_order"] += batch.out_of_order
        return result, batch

    def _read(self, raws: Sequence[bytes]) -> WriteSamples:
        """Each serialized series looked up by its label bytes; parsed only when not known."""
        out = WriteSamples()
        series, values, times, skipped = out.series, out.values, out.times, out.skipped
        cache, split = self._prepared, self._splitter.split
        for raw in raws:
            cut = split(raw)
            if cut is not None:
                prepared = cache.get(cut[0])
                if prepared is not None:
                    out.samples += 1
                    if isinstance(prepared, str):
                        skipped[prepared] += 1
                    else:
                        series.append(prepared)
                        values.append(cut[1])
                        times.append(cut[2])
                    continue
            self._read_series(raw, cut, out)
        return out

    def _read_series(
        self, raw: bytes, cut: tuple[bytes, float, int] | None, out: WriteSamples
    ) -> None:
        """A series parsed (and so validated) in full: new to the cache, or of another shape."""
        try:
            series = TimeSeries.FromString(raw)
        except _PROTOBUF_ERRORS as exc:
            raise DecodeError(f"not a remote-write WriteRequest protobuf: {exc}") from None
        samples = series.samples
        count = len(samples)
        out.samples += count
        if not count:
            return
        prepared = self._lookup(series, cut[0] if cut is not None and count == 1 else None)
        if isinstance(prepared, str):
            out.skipped[prepared] += count
            return
        for sample in samples:
            out.series.append(prepared)
            out.values.append(sample.value)
            out.times.append(sample.timestamp)

    def _lookup(self, series: TimeSeries, label_bytes: bytes | None) -> _Prepared | str:
        """What a series is, from the cache when it was seen before.

        ``label_bytes``: where ``SampleSplitter`` cut the series; the entry is
        cached under them only if they are exactly its labels, serialized.
        """
        labels = series.labels
        if labels and labels[0].name == "__name__" and labels[0].value not in self.mapping.targets:
            return "unmapped_metric"  # most of what Prometheus scrapes: say so before any work
        text = "\xff".join([f"{label.name}\xfe{label.value}" for label in labels])
        key: str | bytes = text
        if label_bytes is not None and TimeSeries(labels=labels).SerializeToString() == label_bytes:
            key = label_bytes
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepare(series, text)
            if len(self._prepared) >= self._cache_limit:
                self._prepared.clear()
            self._prepared[key] = prepared
        return prepared

    def _prepare(self, series: TimeSeries, text: str) -> _Prepared | str:
        """A series' name, identity, plan and state key; or why it is skipped."""
        mapping = self.mapping
        labels = {label.name: label.value for label in series.labels}
        name = labels.get("__name__", "")
        targets = mapping.targets.get(name)
        if targets is None:
            return "unmapped_metric"
        if mapping.drop and mapping.dropped(name, labels):
            return "dropped"
        roles = [
            next((labels[n] for n in names if labels.get(n)), None) for _, names in mapping.roles
        ]
        identity = check_identity(
            roles[0], roles[1] or mapping.default_environment, roles[2], roles[3], roles[4]
        )
        if isinstance(identity, str):
            return identity
        plan = self._plan(name, labels, targets)
        if plan is None:
            return "unsupported_type"
        if plan.requests is not None:
            plan.sums = self._sum(identity, "", 1000.0)
        if plan.le is not None:
            plan.buckets = self._sum(identity, name, plan.scale_ms)
        return name, identity, plan, series_key(text)

    def _sum(self, identity: Identity, histogram: str, scale_ms: float) -> _Sum:
        """The one ``_Sum`` of an identity and histogram, as bounded as the series cache."""
        found = self._sums.get((identity, histogram))
        if found is None:
            if len(self._sums) >= self._cache_limit:
                self._sums.clear()  # a request then sums some series in two parts: same totals
            found = self._sums[identity, histogram] = _Sum(identity, histogram, scale_ms)
        return found

    def _plan(
        self, name: str, labels: dict[str, str], targets: tuple[Target, ...]
    ) -> _SeriesPlan | None:
        """What each sample of a series feeds; None when a latency series has no ``le``."""
        mapping = self.mapping
        plan = _SeriesPlan()
        for target in targets:
            if target.kind == "requests":
                status = next((labels[n] for n in mapping.status_labels if n in labels), "")
                plan.requests = _status_is_error(status, mapping.error_status) or any(
                    labels.get(n) for n in mapping.error_labels
                )
                plan.counter = True
            elif target.kind == "latency":
                plan.le = self._le(labels.get("le"))
                if plan.le is None:
                    return None
                plan.scale_ms = _latency_scale(mapping.latency_unit, name)
                plan.counter = True
            else:
                is_counter = (
                    target.counter if target.counter is not None else name.endswith("_total")
                )
                plan.values.append((target.key, is_counter))
                plan.counter = plan.counter or is_counter
        return plan

    def _le(self, text: str | None) -> float | None:
        if text is None:
            return None
        le = self._le_cache.get(text)
        if le is None:
            try:
                le = float(text)
            except ValueError:
                return None
            if math.isnan(le):
                return None
            if len(self._le_cache) < 4096:
                self._le_cache[text] = le
        return le

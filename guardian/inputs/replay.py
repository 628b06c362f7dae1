"""OTLP dumps as v1 events for ``guardian replay``.

A dump is JSON lines, one OTLP/JSON ``ExportMetricsServiceRequest`` per line
(what the Collector's ``file`` exporter writes, or ``otlp_json`` records
taken from Kafka); v1 events may be interleaved (deploys, checks), so one
file can hold a whole incident. Each export is converted exactly as the
bridge converts a record; its events follow in time order. Pure: lines in,
events out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from guardian.errors import DecodeError
from guardian.inputs.cumulative import SeriesState
from guardian.inputs.mapping import InputsFile, compile_mapping
from guardian.inputs.otlp import OtlpConverter, decode_otlp
from guardian.wire.cdevents import UnusedEventError, decode_record
from guardian.wire.events import InputEvent

_OTLP_MARKERS = (b'"resourceMetrics"', b'"resource_metrics"')


def otlp_json_events(
    lines: Iterable[bytes],
    mapping: InputsFile,
    on_bad: Callable[[int, str], None],
    on_progress: Callable[[int], None] | None = None,
    max_series: int = 200_000,
) -> Iterator[InputEvent]:
    """The v1 events of a dump, in file order; bad lines are reported by number."""
    section = compile_mapping(mapping.otlp, mapping.max_interval)
    converter = OtlpConverter(section, SeriesState(max_series, section.max_interval_ms))
    for number, line in enumerate(lines, start=1):
        if on_progress is not None and number % 1024 == 0:
            on_progress(number)
        if not line.strip():
            continue
        try:
            if any(marker in line for marker in _OTLP_MARKERS):
                conversion, batch = converter.convert(decode_otlp(line, "otlp_json"))
                batch.commit()
                reason = conversion.rejection_reason()
                if reason is not None:
                    on_bad(number, reason)
                yield from conversion.events
            else:
                yield decode_record(line)
        except UnusedEventError:
            continue  # a CloudEvent of a type the guardian does not judge, as in v1 replay
        except DecodeError as exc:
            on_bad(number, exc.reason)

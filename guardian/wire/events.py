"""Input events of wire contract v1, decoded on the hot path.

Deploy, metric and check events are msgspec structs: msgspec validates types
in C while it parses, which keeps per-event cost near a bare JSON parse
(see benchmarks/). Unknown fields are ignored; a missing required field, a
wrong type, a non-finite number or an out-of-range value is a ``DecodeError``
whose reason names the JSON path, so the dead letter tells the producer
exactly what to fix.

Timestamps arrive as RFC 3339 strings or epoch milliseconds and are held as
``EventTime`` (an ``int`` of epoch milliseconds) from here on.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from guardian.errors import DecodeError

# Bounds that keep hostile input from bending event time or memory.
MIN_EVENT_TIME_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_EVENT_TIME_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
MAX_RECORD_BYTES = 64 * 1024

Label = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
OptionalLabel = Annotated[str, msgspec.Meta(max_length=256)] | None
Text = Annotated[str, msgspec.Meta(max_length=4096)]
MetricName = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]

DeployType = Literal["started", "progressed", "completed", "rolled_back", "failed"]
Strategy = Literal["blue_green", "canary", "progressive", "rolling"]
Component = Literal["application", "configuration", "database"]
Cohort = Literal["canary", "stable", "baseline"]
CheckStatus = Literal["pass", "fail", "warn"]

FINISHING_TYPES: frozenset[str] = frozenset({"completed", "rolled_back", "failed"})

# A ``rolled_back`` or ``failed`` step whose producer knows the service but not the guardian's
# deploy id (a CDEvents ``service.rolledback``, a CI script) names the service's live deploy
# with this id; its ``version`` is then the version running after the rollback.
LIVE_DEPLOY = "@live"


class EventTime(int):
    """Epoch milliseconds, decoded from an RFC 3339 string or a number."""

    __slots__ = ()


def _to_event_time(obj: object) -> EventTime:
    if isinstance(obj, bool):
        raise ValueError("expected an RFC 3339 string or epoch milliseconds, got a boolean")
    if isinstance(obj, int | float):
        if not math.isfinite(obj):
            raise ValueError("timestamp must be finite")
        ms = int(obj)
    elif isinstance(obj, str):
        try:
            parsed = datetime.fromisoformat(obj)
        except ValueError:
            raise ValueError(f"not an RFC 3339 timestamp: {obj[:64]!r}") from None
        if parsed.tzinfo is None:
            # RFC 3339 requires an offset; treat a bare local time as UTC rather than
            # letting the machine's timezone change decisions.
            parsed = parsed.replace(tzinfo=UTC)
        ms = round(parsed.timestamp() * 1000)
    else:
        raise ValueError(
            f"expected an RFC 3339 string or epoch milliseconds, got {type(obj).__name__}"
        )
    if not MIN_EVENT_TIME_MS <= ms <= MAX_EVENT_TIME_MS:
        raise ValueError(f"timestamp {ms} ms is outside 2000-01-01..2100-01-01")
    return EventTime(ms)


def parse_event_time(obj: object) -> EventTime:
    """An RFC 3339 string or epoch milliseconds as ``EventTime``; ValueError when it is neither."""
    return _to_event_time(obj)


def _dec_hook(tp: type, obj: Any) -> Any:
    if tp is EventTime:
        return _to_event_time(obj)
    raise NotImplementedError(f"cannot decode {tp!r}")  # pragma: no cover - no other hooks


class DeployEvent(msgspec.Struct, tag="deploy", tag_field="kind", kw_only=True):
    """A deploy's lifecycle step: started, progressed, completed, rolled back or failed."""

    type: DeployType
    deploy_id: Label
    service: Label
    environment: Label
    version: Label
    timestamp: EventTime
    previous_version: OptionalLabel = None
    strategy: Strategy = "rolling"
    component: Component = "application"
    regions: Annotated[list[Label], msgspec.Meta(max_length=64)] = msgspec.field(
        default_factory=list
    )
    traffic_percent: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    actor: OptionalLabel = None

    def __post_init__(self) -> None:
        if self.deploy_id == LIVE_DEPLOY and self.type not in ("rolled_back", "failed"):
            raise ValueError(
                f"deploy_id {LIVE_DEPLOY!r} names the service's live deploy: only a rolled_back "
                f"or failed step may use it, not {self.type!r}"
            )


class MetricEvent(msgspec.Struct, tag="metric", tag_field="kind", kw_only=True, gc=False):
    """Numeric measurements of one series (service, environment, region, cohort) at a time."""

    service: Label
    environment: Label
    timestamp: EventTime
    values: Annotated[dict[MetricName, float], msgspec.Meta(max_length=64)]
    region: OptionalLabel = None
    cohort: Cohort | None = None
    version: OptionalLabel = None

    def __post_init__(self) -> None:
        values = self.values
        for name, value in values.items():
            if not math.isfinite(value):
                raise ValueError(f"values.{name} must be a finite number")
        requests = values.get("requests")
        errors = values.get("errors")
        if requests is not None and requests < 0:
            raise ValueError("values.requests must not be negative")
        if errors is not None:
            if errors < 0:
                raise ValueError("values.errors must not be negative")
            if requests is not None and errors > requests:
                raise ValueError("values.errors must not exceed values.requests")


class CheckEvent(msgspec.Struct, tag="check", tag_field="kind", kw_only=True):
    """A post-deploy validation result (API health, database connectivity, ...)."""

    service: Label
    environment: Label
    check: Label
    status: CheckStatus
    timestamp: EventTime
    region: OptionalLabel = None
    deploy_id: OptionalLabel = None
    detail: Text | None = None


InputEvent: TypeAlias = DeployEvent | MetricEvent | CheckEvent


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, EventTime):
        return int(obj)
    raise NotImplementedError(f"cannot encode {type(obj)!r}")  # pragma: no cover


_decoder = msgspec.json.Decoder(InputEvent, dec_hook=_dec_hook)
_encoder = msgspec.json.Encoder(enc_hook=_enc_hook)


def decode_event(data: bytes | str) -> InputEvent:
    """Decode one v1 record; raise ``DecodeError`` with a precise reason if it is not one."""
    if len(data) > MAX_RECORD_BYTES:
        raise DecodeError(f"record of {len(data)} bytes exceeds the {MAX_RECORD_BYTES}-byte limit")
    try:
        event: InputEvent = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"invalid event: {exc}") from None
    except msgspec.DecodeError as exc:
        raise DecodeError(f"not valid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # raised from __post_init__ or the hooks
        raise DecodeError(f"invalid event: {exc}") from None
    return event


def encode_event(event: InputEvent) -> bytes:
    """Encode an event back to v1 JSON (timestamps as epoch milliseconds)."""
    return _encoder.encode(event)


def event_key(event: InputEvent) -> bytes:
    """The partition key of an input event: its service, so one replica owns a service."""
    return event.service.encode()

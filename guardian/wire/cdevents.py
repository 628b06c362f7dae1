"""CDEvents deploy events as v1 deploy events: the decode step for records that are not v1.

A record of an input topic is a v1 event, or a CDEvent (spec 0.2.x, 0.3.x,
and 0.4.x, whose service events have the same shape) in one of three forms:

- CloudEvents **binary** mode: the CloudEvent's attributes in ``ce_`` Kafka
  headers (``ce-`` HTTP headers), the CDEvent document as the value;
- CloudEvents **structured** mode: ``{"specversion": "1.0", ..., "data":
  <CDEvent>}`` (``content-type: application/cloudevents+json``, or found by
  its ``specversion``; ``data_base64`` is read too);
- a **bare** CDEvent document: ``{"context": ..., "subject": ...}``.

The service events map to one v1 ``DeployEvent``: ``service.deployed`` and
``service.upgraded`` (a version is live) open a deploy that bakes at once
(``completed``: rules watch it for the bake time); ``service.rolledback``
(the rollback happened) is ``rolled_back`` for the service's live deploy
(deploy id ``@live``; its version is what runs again). The service is the
last path segment of ``subject.id``, the environment that of
``subject.content.environment.id``, the version that of the package URL
``subject.content.artifactId`` (``pkg:oci/checkout@2.4.1`` → ``2.4.1``). A
deploy's id is derived from the CDEvent's ``source`` and ``id``, so a
redelivered CDEvent is the same deploy. No previous version is set: the
engine takes what it last saw running. An object ``customData`` may carry
the v1 ``strategy``, ``component`` and ``regions``.

Other CloudEvents and CDEvents types are ``UnusedEventError`` (a ``DecodeError``
the pipeline skips without a dead letter); anything malformed is a
``CDEventError`` whose ``path`` names the field. Pure: no I/O, bounded
input, and nothing but ``DecodeError`` leaves ``decode_record``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import unquote

import msgspec

from guardian.errors import DecodeError
from guardian.wire.events import (
    LIVE_DEPLOY,
    MAX_RECORD_BYTES,
    Component,
    DeployEvent,
    DeployType,
    InputEvent,
    Label,
    Strategy,
    decode_event,
    parse_event_time,
)

CLOUDEVENTS_JSON = "application/cloudevents+json"
KAFKA_PREFIX = "ce_"
HTTP_PREFIX = "ce-"
# CDEvents spec versions whose service events this decoder knows.
SPEC_VERSIONS = re.compile(r"0\.[234]\.\d+([-+].*)?")
# dev.cdevents.service.<predicate>.<event version>
_SERVICE_TYPE = re.compile(r"dev\.cdevents\.service\.([a-z]+)\.\d+\.\d+\.\d+([-+].*)?")
_STEP: dict[str, DeployType] = {
    "deployed": "completed",
    "upgraded": "completed",
    "rolledback": "rolled_back",
}
_MAX_LABEL = 256

Headers = Sequence[tuple[str, bytes | str]]  # Kafka headers are bytes, HTTP headers str


class CDEventError(DecodeError):
    """A CDEvent (or its CloudEvent envelope) the guardian cannot use; ``path`` names the field."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"invalid CDEvent: {problem} - at `{path}`")
        self.path = path
        self.problem = problem


class UnusedEventError(DecodeError):
    """A well-formed CloudEvent of a type the guardian does not judge: skipped, no dead letter."""


Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
_ABSENT = msgspec.Raw()  # a field that was not there (an empty Raw is falsy)


class _Context(msgspec.Struct):
    version: Text
    id: Text
    source: Text
    type: Text
    timestamp: Any


class _Environment(msgspec.Struct):
    id: Text


class _Content(msgspec.Struct):
    environment: _Environment
    artifactId: Text  # noqa: N815 - the CDEvents field name


class _Subject(msgspec.Struct):
    id: Text
    content: msgspec.Raw


class _Document(msgspec.Struct):
    context: _Context
    subject: _Subject
    customData: Any = None  # noqa: N815 - the CDEvents field name


class _Hints(msgspec.Struct):
    strategy: Strategy = "rolling"
    component: Component = "application"
    regions: Annotated[list[Label], msgspec.Meta(max_length=64)] = msgspec.field(
        default_factory=list
    )


class _Structured(msgspec.Struct):
    specversion: Any
    type: Any = None
    datacontenttype: Any = None
    data: msgspec.Raw = _ABSENT
    data_base64: Any = None


class _Shape(msgspec.Struct):
    """Just enough of a JSON object to tell which form it is."""

    kind: msgspec.Raw = _ABSENT
    specversion: msgspec.Raw = _ABSENT
    context: msgspec.Raw = _ABSENT
    subject: msgspec.Raw = _ABSENT


_shape = msgspec.json.Decoder(_Shape)
_structured = msgspec.json.Decoder(_Structured)
_document = msgspec.json.Decoder(_Document)
_content = msgspec.json.Decoder(_Content)


def decode_record(value: bytes, headers: Headers = ()) -> InputEvent:
    """A record of an input topic as an event: v1, or a CDEvent in any of its three forms."""
    if headers:
        attributes = binary_attributes(headers, KAFKA_PREFIX)
        if attributes is not None:
            return decode_binary(value, attributes)
        if _is_structured(headers):
            return decode_structured(value)
    try:
        return decode_event(value)
    except DecodeError as v1_error:
        try:
            shape = _shape.decode(value)
        except (msgspec.MsgspecError, RecursionError):
            raise v1_error from None
        if shape.kind:
            raise v1_error from None  # it claims to be v1: the v1 reason is the useful one
        if shape.specversion:
            return decode_structured(value)
        if shape.context and shape.subject:
            return decode_cdevent(value)
        raise v1_error from None


def binary_attributes(headers: Headers, prefix: str) -> dict[str, str] | None:
    """CloudEvents attributes from ``ce_`` (Kafka) or ``ce-`` (HTTP) headers; None if none."""
    attributes: dict[str, str] = {}
    for name, raw in headers:
        lowered = name.lower()
        if lowered.startswith(prefix):
            attributes[lowered[len(prefix) :]] = _header_text(name, raw)
        elif lowered == "content-type":
            attributes.setdefault("datacontenttype", _header_text(name, raw))
    return attributes if "specversion" in attributes else None


def _header_text(name: str, raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CDEventError(f"header {name}", "not UTF-8") from None


def _is_structured(headers: Headers) -> bool:
    for name, raw in headers:
        if name.lower() == "content-type":
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            return text.lower().startswith("application/cloudevents")
    return False


def decode_binary(value: bytes, attributes: Mapping[str, str]) -> DeployEvent:
    """Binary mode: attributes from headers, the CDEvent document as the value."""
    _check_envelope(attributes.get("specversion"), attributes.get("type"), "ce_")
    content_type = attributes.get("datacontenttype")
    if content_type is not None and "json" not in content_type.lower():
        raise CDEventError("content-type", f"expected JSON data, got {content_type[:80]!r}")
    document = _parse(value, "$")
    _same_type(attributes.get("type"), document, "ce_type")
    return _deploy_event(document, "$")


def decode_structured(value: bytes) -> DeployEvent:
    """Structured mode: the CloudEvent as JSON, the CDEvent in ``data`` (or ``data_base64``)."""
    _check_size(value)
    try:
        envelope = _structured.decode(value)
    except msgspec.ValidationError as exc:
        raise _from_msgspec(exc, "$") from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise DecodeError(f"not valid JSON: {exc}") from None
    _check_envelope(envelope.specversion, envelope.type, "")
    content_type = envelope.datacontenttype
    if content_type is not None and (
        not isinstance(content_type, str) or "json" not in content_type.lower()
    ):
        raise CDEventError("$.datacontenttype", f"expected JSON data, got {content_type!r:.80}")
    if envelope.data and bytes(envelope.data) != b"null":
        data = bytes(envelope.data)
        prefix = "$.data"
        if data.startswith(b'"'):  # JSON data carried as a JSON string
            try:
                data = msgspec.json.decode(data, type=str).encode()
            except UnicodeEncodeError:
                raise CDEventError(prefix, "the data string is not valid Unicode") from None
    elif isinstance(envelope.data_base64, str):
        try:
            data = base64.b64decode(envelope.data_base64, validate=True)
        except (binascii.Error, ValueError):
            raise CDEventError("$.data_base64", "not base64") from None
        prefix = "$.data_base64"
    else:
        raise CDEventError("$.data", "a CDEvent CloudEvent carries the CDEvent in data")
    document = _parse(data, prefix)
    _same_type(envelope.type, document, "$.type")
    return _deploy_event(document, prefix)


def decode_cdevent(data: bytes) -> DeployEvent:
    """A bare CDEvent document (``context``, ``subject``) as a v1 deploy event."""
    return _deploy_event(_parse(data, "$"), "$")


def _parse(data: bytes, prefix: str) -> _Document:
    _check_size(data)
    try:
        return _document.decode(data)
    except msgspec.ValidationError as exc:
        raise _from_msgspec(exc, prefix) from None
    except (msgspec.DecodeError, RecursionError) as exc:
        where = "" if prefix == "$" else f" in {prefix}"
        raise DecodeError(f"not valid JSON{where}: {exc}") from None


def _deploy_event(document: _Document, prefix: str) -> DeployEvent:
    context = document.context
    if not SPEC_VERSIONS.fullmatch(context.version):
        raise CDEventError(
            f"{prefix}.context.version",
            f"CDEvents spec {context.version[:40]!r} is not read (0.2.x, 0.3.x, 0.4.x are)",
        )
    step = _step_of(context.type, f"{prefix}.context.type")
    try:
        content = _content.decode(document.subject.content)
    except msgspec.ValidationError as exc:
        raise _from_msgspec(exc, f"{prefix}.subject.content") from None
    try:
        timestamp = parse_event_time(context.timestamp)
    except ValueError as exc:
        raise CDEventError(f"{prefix}.context.timestamp", str(exc)) from None
    hints = _hints(document.customData, f"{prefix}.customData")
    service = _last_segment(document.subject.id, f"{prefix}.subject.id")
    environment = _last_segment(content.environment.id, f"{prefix}.subject.content.environment.id")
    version = purl_version(content.artifactId, f"{prefix}.subject.content.artifactId")
    if step == "rolled_back":
        deploy_id = LIVE_DEPLOY
    else:
        digest = hashlib.sha256(f"{context.source}|{context.id}".encode()).hexdigest()
        deploy_id = "cde-" + digest[:20]
    return DeployEvent(
        type=step,
        deploy_id=deploy_id,
        service=service,
        environment=environment,
        version=version,
        timestamp=timestamp,
        strategy=hints.strategy,
        component=hints.component,
        regions=hints.regions,
        actor=context.source[:_MAX_LABEL],
    )


def purl_version(purl: str, path: str = "artifactId") -> str:
    """The version of a package URL (``pkg:type/namespace/name@version?qualifiers#subpath``)."""
    if not purl.startswith("pkg:"):
        raise CDEventError(path, f"not a package URL (pkg:type/name@version): {purl[:80]!r}")
    core = purl.split("#", 1)[0].split("?", 1)[0]
    name, at, version = core.rpartition("@")
    if not at or "/" not in name or not version:
        raise CDEventError(path, f"the package URL names no version: {purl[:80]!r}")
    return _label(unquote(version), path)


def _last_segment(identifier: str, path: str) -> str:
    return _label(identifier.rstrip("/").rsplit("/", 1)[-1], path)


def _label(text: str, path: str) -> str:
    if not text or len(text) > _MAX_LABEL or not text.isprintable():
        raise CDEventError(path, f"expected 1 to {_MAX_LABEL} printable characters")
    return text


def _step_of(event_type: str, path: str) -> DeployType:
    match = _SERVICE_TYPE.fullmatch(event_type)
    if match is None:
        if event_type.startswith("dev.cdevents."):
            raise UnusedEventError(f"CDEvent type {event_type[:80]!r} is not a deploy")
        raise CDEventError(path, f"not a CDEvents type: {event_type[:80]!r}")
    step = _STEP.get(match.group(1))
    if step is None:
        raise UnusedEventError(f"CDEvent type {event_type[:80]!r} is not a deploy")
    return step


def _check_envelope(specversion: object, event_type: object, prefix: str) -> None:
    where = f"{prefix}specversion" if prefix else "$.specversion"
    if specversion != "1.0":
        raise CDEventError(where, f"CloudEvents specversion must be '1.0', got {specversion!r:.40}")
    type_path = f"{prefix}type" if prefix else "$.type"
    if not isinstance(event_type, str) or not event_type:
        raise CDEventError(type_path, "a CloudEvent needs its type")
    if not event_type.startswith("dev.cdevents."):
        raise UnusedEventError(f"CloudEvent type {event_type[:80]!r} is not a CDEvent")


def _same_type(event_type: object, document: _Document, path: str) -> None:
    """The envelope's type must be the CDEvent's own (the binding says it is copied)."""
    inner = document.context.type
    if event_type != inner:
        raise CDEventError(path, f"{event_type!r:.80} differs from the CDEvent's {inner!r:.80}")


def _hints(custom: object, path: str) -> _Hints:
    if not isinstance(custom, dict):
        return _Hints()  # none, or data of another content type (base64)
    try:
        return msgspec.convert(custom, _Hints)
    except msgspec.ValidationError as exc:
        raise _from_msgspec(exc, path) from None


def _check_size(data: bytes) -> None:
    if len(data) > MAX_RECORD_BYTES:
        raise DecodeError(f"record of {len(data)} bytes exceeds the {MAX_RECORD_BYTES}-byte limit")


_AT = re.compile(r" - at `\$(.*)`$")


def _from_msgspec(exc: msgspec.ValidationError, prefix: str) -> CDEventError:
    """msgspec's message, with its ``$`` path put under ``prefix``."""
    message = str(exc)
    found = _AT.search(message)
    if found is None:
        return CDEventError(prefix, message)
    return CDEventError(prefix + found.group(1), message[: found.start()])

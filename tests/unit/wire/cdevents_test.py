"""CDEvents into v1 deploy events: the three forms, the spec's versions, and hostile input."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardian.errors import DecodeError
from guardian.wire.cdevents import (
    CDEventError,
    UnusedEventError,
    binary_attributes,
    decode_record,
    purl_version,
)
from guardian.wire.events import LIVE_DEPLOY, DeployEvent, MetricEvent
from tests.support.cdevents import Mode, cdevent, kafka_form

T0 = 1_795_478_400_000
MODES: tuple[Mode, ...] = ("bare", "structured", "binary")
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# The spec's own example of service.deployed (spec v0.2.0 and v0.3.0 share it but for the version).
SPEC_EXAMPLE = {
    "context": {
        "version": "0.2.0",
        "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
        "source": "/event/source/123",
        "type": "dev.cdevents.service.deployed.0.1.1",
        "timestamp": "2023-03-20T14:27:05.315384Z",
    },
    "subject": {
        "id": "mySubject123",
        "source": "/event/source/123",
        "type": "service",
        "content": {
            "environment": {"id": "test123"},
            "artifactId": "pkg:oci/myapp@sha256%3A0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d"
            "1e8de6817db93427",
        },
    },
}


def _decode(document: dict[str, Any], mode: Mode = "bare") -> DeployEvent:
    headers, value = kafka_form(document, mode)
    event = decode_record(value, headers)
    assert isinstance(event, DeployEvent)
    return event


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("predicate", "step"),
    [("deployed", "completed"), ("upgraded", "completed"), ("rolledback", "rolled_back")],
)
def test_each_form_maps_the_service_events(mode: Mode, predicate: str, step: str) -> None:
    """Bare, structured and binary (built by the CloudEvents SDK) decode to the same event."""
    event = _decode(cdevent(predicate, at_ms=T0), mode)
    assert (event.type, event.service, event.environment) == (step, "checkout", "production")
    assert (event.version, event.timestamp, event.previous_version) == ("2.4.1", T0, None)
    assert (event.strategy, event.component, event.actor) == (
        "rolling",
        "application",
        "/argocd/prod",
    )
    if predicate == "rolledback":
        assert event.deploy_id == LIVE_DEPLOY
    else:
        assert event.deploy_id.startswith("cde-")


@pytest.mark.parametrize(
    ("spec", "event_version"), [("0.2.0", "0.1.1"), ("0.3.0", "0.1.1"), ("0.4.1", "0.2.0")]
)
def test_spec_versions_are_read(spec: str, event_version: str) -> None:
    """CDEvents 0.2.x and 0.3.x (and 0.4.x, whose service events are alike) are read."""
    event = _decode(cdevent(at_ms=T0, spec=spec, event_version=event_version))
    assert event.version == "2.4.1"


def test_the_spec_example_decodes() -> None:
    """The spec's service.deployed example: subject id, environment id, the OCI digest."""
    event = _decode(SPEC_EXAMPLE)
    assert (event.service, event.environment) == ("mySubject123", "test123")
    assert event.version.startswith("sha256:0b31b1c0")


def test_the_deploy_id_follows_source_and_id() -> None:
    """A redelivered CDEvent is the same deploy; another event id is another deploy."""
    first = _decode(cdevent(at_ms=T0))
    again = _decode(cdevent(at_ms=T0), "binary")
    other = _decode(cdevent(at_ms=T0, event_id="another"))
    assert first.deploy_id == again.deploy_id != other.deploy_id


def test_custom_data_carries_the_v1_strategy_and_regions() -> None:
    """``customData`` may say canary, configuration and the regions reached."""
    custom = {"strategy": "canary", "component": "configuration", "regions": ["eu-west"], "x": 1}
    event = _decode(cdevent(at_ms=T0, custom=custom), "structured")
    assert (event.strategy, event.component, event.regions) == (
        "canary",
        "configuration",
        ["eu-west"],
    )


def test_structured_data_base64_and_string_data_are_read() -> None:
    """``data_base64``, and JSON data carried as a string, are the same CDEvent."""
    document = cdevent(at_ms=T0)
    base = {"specversion": "1.0", "id": "1", "source": "/s", "type": document["context"]["type"]}
    encoded = base64.b64encode(orjson.dumps(document)).decode()
    for envelope in (
        {**base, "data_base64": encoded},
        {**base, "data": orjson.dumps(document).decode()},
    ):
        event = decode_record(orjson.dumps(envelope))
        assert isinstance(event, DeployEvent)
        assert event.version == "2.4.1"


@pytest.mark.parametrize(
    ("purl", "version"),
    [
        ("pkg:oci/checkout@2.4.1", "2.4.1"),
        ("pkg:oci/checkout@sha256%3Aabc?repository_url=ghcr.io", "sha256:abc"),
        ("pkg:npm/%40acme/checkout@1.0.0-rc.1#dist", "1.0.0-rc.1"),
        ("pkg:maven/org.acme/checkout@3.1?type=jar", "3.1"),
    ],
)
def test_purl_versions(purl: str, version: str) -> None:
    """The version of a package URL, percent-decoded, without qualifiers or subpath."""
    assert purl_version(purl) == version


def _broken(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(cdevent(at_ms=T0))
    change(document)
    return document


@pytest.mark.parametrize(
    ("name", "document", "path"),
    [
        (
            "no environment",
            _broken(lambda d: d["subject"]["content"].pop("environment")),
            "$.subject.content",
        ),
        (
            "environment id a number",
            _broken(lambda d: d["subject"]["content"]["environment"].update(id=7)),
            "$.subject.content.environment.id",
        ),
        (
            "artifactId not a purl",
            _broken(lambda d: d["subject"]["content"].update(artifactId="checkout:2.4.1")),
            "$.subject.content.artifactId",
        ),
        (
            "purl without version",
            _broken(lambda d: d["subject"]["content"].update(artifactId="pkg:oci/checkout")),
            "$.subject.content.artifactId",
        ),
        (
            "unread spec version",
            _broken(lambda d: d["context"].update(version="0.1.0")),
            "$.context.version",
        ),
        (
            "bad timestamp",
            _broken(lambda d: d["context"].update(timestamp="yesterday")),
            "$.context.timestamp",
        ),
        ("no context id", _broken(lambda d: d["context"].pop("id")), "$.context"),
        (
            "subject id only slashes",
            _broken(lambda d: d["subject"].update(id="///")),
            "$.subject.id",
        ),
        (
            "unknown strategy",
            _broken(lambda d: d.update(customData={"strategy": "yolo"})),
            "$.customData.strategy",
        ),
        (
            "not a CDEvents type",
            _broken(lambda d: d["context"].update(type="com.acme.deployed")),
            "$.context.type",
        ),
    ],
)
def test_malformed_cdevents_name_the_field(name: str, document: dict[str, Any], path: str) -> None:
    """Every malformed CDEvent is a CDEventError whose path names the field at fault."""
    with pytest.raises(CDEventError) as raised:
        decode_record(orjson.dumps(document))
    assert raised.value.path == path, name
    assert path in raised.value.reason


def test_envelope_errors_name_the_attribute() -> None:
    """A CloudEvent that is not 1.0, or whose type differs from its CDEvent's, is refused."""
    headers, value = kafka_form(cdevent(at_ms=T0), "binary")
    old = [(k, b"0.3" if k == "ce_specversion" else v) for k, v in headers]
    with pytest.raises(CDEventError, match="ce_specversion"):
        decode_record(value, old)
    wrong = [
        (k, b"dev.cdevents.service.deployed.0.1.1" if k == "ce_type" else v) for k, v in headers
    ]
    with pytest.raises(CDEventError, match="ce_type"):
        decode_record(value, wrong)
    xml = [(k, b"application/xml" if k == "content-type" else v) for k, v in headers]
    with pytest.raises(CDEventError, match="content-type"):
        decode_record(value, xml)
    structured = orjson.loads(kafka_form(cdevent(at_ms=T0), "structured")[1])
    with pytest.raises(CDEventError) as raised:
        decode_record(orjson.dumps({**structured, "data": None}))
    assert raised.value.path == "$.data"


@pytest.mark.parametrize(
    "event_type",
    ["dev.cdevents.incident.detected.0.1.0", "dev.cdevents.service.removed.0.1.1", "com.acme.x"],
)
def test_other_types_are_unused_not_errors(event_type: str) -> None:
    """CloudEvents the guardian does not judge are UnusedEventError (skipped, no dead letter)."""
    headers, value = kafka_form(cdevent(at_ms=T0), "binary")
    retyped = [(k, event_type.encode() if k == "ce_type" else v) for k, v in headers]
    document = cdevent(at_ms=T0)
    document["context"]["type"] = event_type
    with pytest.raises(UnusedEventError):
        decode_record(orjson.dumps(document) if event_type.startswith("dev.") else value, retyped)


def test_v1_records_are_decoded_as_before() -> None:
    """v1 events, with or without unrelated headers, decode as v1; their errors stay v1's."""
    metric = orjson.dumps(
        {"kind": "metric", "service": "s", "environment": "e", "timestamp": T0, "values": {}}
    )
    assert isinstance(decode_record(metric, [("traceparent", b"00-abc")]), MetricEvent)
    with pytest.raises(DecodeError, match="kind"):
        decode_record(b'{"service": "s"}')
    with pytest.raises(DecodeError, match=r"^invalid event: Object missing required field"):
        decode_record(b'{"kind": "deploy", "context": {}, "subject": {}}')


def test_http_headers_give_binary_attributes() -> None:
    """``ce-`` HTTP headers are read like ``ce_`` Kafka headers; none means not binary."""
    attributes = binary_attributes(
        [("Ce-Specversion", "1.0"), ("Content-Type", "application/json")],
        "ce-",
    )
    assert attributes == {"specversion": "1.0", "datacontenttype": "application/json"}
    assert binary_attributes([("Content-Type", b"application/json")], "ce-") is None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
PATHS = st.lists(
    st.sampled_from(
        [
            "context",
            "subject",
            "content",
            "environment",
            "id",
            "artifactId",
            "version",
            "type",
            "timestamp",
            "source",
            "customData",
            "strategy",
            "regions",
        ]
    ),
    min_size=1,
    max_size=4,
)


def _mutate(document: Any, path: list[str], value: Any) -> Any:
    node = document
    for key in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            break
        node = node[key]
    if isinstance(node, dict):
        node[path[-1]] = value
    return document


def _clear(value: bytes, headers: list[tuple[str, bytes]]) -> None:
    reason = "decoded"
    try:
        decode_record(value, headers)
    except DecodeError as exc:  # the one exception a caller has to expect
        reason = exc.reason
    assert reason


@FUZZ
@given(mode=st.sampled_from(MODES), path=PATHS, value=JSON)
def test_fuzzed_cdevents_decode_or_fail_clearly(mode: Mode, path: list[str], value: Any) -> None:
    """A CDEvent with any field replaced by any JSON decodes or raises a DecodeError."""
    headers, data = kafka_form(cdevent(at_ms=T0), mode)
    document = _mutate(cdevent(at_ms=T0), path, value)
    # The standard library writes what orjson refuses (big integers, NaN): hostile JSON too.
    if mode == "structured":
        data = json.dumps({**orjson.loads(data), "data": document}).encode()
    else:
        data = json.dumps(document).encode()
    _clear(data, headers)


@FUZZ
@given(
    data=st.binary(max_size=300),
    headers=st.lists(
        st.tuples(
            st.sampled_from(["ce_specversion", "ce_type", "content-type", "ce_id", "x"]),
            st.one_of(
                st.sampled_from([b"1.0", b"application/cloudevents+json", b"dev.cdevents.x"]),
                st.binary(max_size=20),
            ),
        ),
        max_size=4,
    ),
)
def test_fuzzed_bytes_and_headers_fail_clearly(
    data: bytes, headers: list[tuple[str, bytes]]
) -> None:
    """Garbage bytes under any headers: a DecodeError, never another exception."""
    _clear(data, headers)


@FUZZ
@given(cut=st.integers(0, 2000), mode=st.sampled_from(MODES))
def test_truncated_records_fail_clearly(cut: int, mode: Mode) -> None:
    """A record cut anywhere is a DecodeError (or, uncut, the event)."""
    headers, data = kafka_form(cdevent(at_ms=T0), mode)
    _clear(data[:cut], headers)


def test_deep_nesting_and_huge_records_fail_clearly() -> None:
    """A document nested ten thousand deep, or beyond the size limit, is a DecodeError."""
    deep = b'{"context": ' + b"[" * 10_000 + b"]" * 10_000 + b', "subject": {}}'
    for value in (deep, b'{"specversion": "1.0", "data": "' + b"x" * 70_000 + b'"}'):
        with pytest.raises(DecodeError):
            decode_record(value)

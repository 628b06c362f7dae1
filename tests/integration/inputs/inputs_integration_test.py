"""The inputs in a running daemon on a real broker: OTLP records and remote-write requests."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from guardian.config.settings import Settings
from guardian.inputs.remote_write import encode_write_request
from tests.integration.inputs.support import (
    INGEST,
    committed_total,
    post_write,
    read_keyed,
    running,
)
from tests.support.kafka import produce, unique
from tests.support.manual import write_tokens
from tests.unit.inputs.builders import CANARY, T0_MS, SdkService, export, histogram, write_request

pytestmark = pytest.mark.kafka


async def test_otlp_records_become_metric_events_and_bad_records_one_dead_letter_each(
    settings_factory: Callable[..., Settings],
) -> None:
    """SDK exports → events keyed by service; garbage and unmappable records → one letter each."""
    topic = unique("otlp")
    settings = settings_factory(otlp_topics=[topic])
    nameless = export(
        {"deployment.environment.name": "production"},
        [
            histogram(
                [({"http.response.status_code": 200}, 5, [5] + [0] * 14)], at_ms=T0_MS, delta=True
            )
        ],
    ).SerializeToString()
    async with running(settings) as daemon:
        bootstrap = daemon.bootstrap_servers
        assert bootstrap
        # The service starts after the guardian: its first export counts in full.
        service = SdkService(CANARY)
        service.serve(100, error_rate=0.1, latency_s=0.3)
        first = service.export().SerializeToString()
        service.serve(50, error_rate=0.0, latency_s=0.02)
        second = service.export().SerializeToString()
        service.shutdown()
        # One partition for all: the offsets of the dead letters are known.
        records = [(b"r", first), (b"r", b"\x89PNG garbage"), (b"r", nameless), (b"r", second)]
        await produce(bootstrap, topic, records)
        events = await read_keyed(bootstrap, settings.metric_topic, 2)
        letters = await read_keyed(bootstrap, settings.dlq_topic, 2)
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            committed = await committed_total(bootstrap, f"{settings.group_id}-otlp", topic)
            if committed >= 4 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
        metrics = daemon.metrics
    assert [key for key, _ in events] == [b"checkout", b"checkout"]
    values = [event["values"] for _, event in events]
    assert [(v["requests"], v["errors"]) for v in values] == [(100, 10), (50, 0)]
    assert all(event["cohort"] == "canary" and event["version"] == "2.4.1" for _, event in events)
    assert len(letters) == 2
    by_offset = {letter["source"]["offset"]: letter for _, letter in letters}
    assert "ExportMetricsServiceRequest" in by_offset[1]["reason"]
    assert by_offset[2]["reason"] == "1 of 1 samples not mapped: no_service=1"
    assert by_offset[2]["source"]["topic"] == topic
    assert committed == 4
    skipped = metrics.input_samples_skipped.labels("otlp", "no_service")._value.get()
    assert skipped == 1


async def test_remote_write_answers_as_prometheus_expects(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """204 once on Kafka, 400 unreadable, 401 unknown token, 403 without the ingest role."""
    tokens = write_tokens(tmp_path / "tokens.yaml", INGEST)
    settings = settings_factory(tokens_file=tokens)
    labels = {"__name__": "http_requests_total", "job": "cart", "environment": "production"}
    request = write_request(
        [
            ({**labels, "code": "200"}, [(T0_MS, 10), (T0_MS + 1000, 30)]),
            ({**labels, "code": "500"}, [(T0_MS, 1), (T0_MS + 1000, 6)]),
            ({"__name__": "up", "job": "cart"}, [(T0_MS, 1)]),
        ]
    )
    async with running(settings) as daemon:
        bootstrap, port = daemon.bootstrap_servers, daemon.http_port
        assert bootstrap
        assert port
        status, _ = await post_write(port, request)
        # Nothing written before the 204: the events are there already.
        events = await read_keyed(bootstrap, settings.metric_topic, 1, timeout_s=5)
        assert status == 204
        unreadable = await post_write(port, b"\x89PNG not snappy")
        unknown = await post_write(port, request, token="nope")
        missing = await post_write(port, request, token=None)
        forbidden = await post_write(port, request, token="tok-alice-0123456789")
        retried = await post_write(port, request)
    assert events == [
        (
            b"cart",
            {
                "kind": "metric",
                "service": "cart",
                "environment": "production",
                "timestamp": T0_MS + 1000,
                "values": {"requests": 25.0, "errors": 5.0},
                "region": None,
                "cohort": None,
                "version": None,
            },
        )
    ]
    assert unreadable[0] == 400
    assert "snappy" in unreadable[1]
    assert (unknown[0], missing[0], forbidden[0]) == (401, 401, 403)
    assert retried[0] == 204  # a resent request: acknowledged, its samples already counted


async def test_remote_write_dead_letters_unusable_samples_and_unreadable_bodies_once(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Rejected samples: 204 and one letter per request; unreadable body: 400, one small letter."""
    tokens = write_tokens(tmp_path / "tokens.yaml", INGEST)
    settings = settings_factory(tokens_file=tokens)
    labels = {"__name__": "http_requests_total", "environment": "production", "code": "200"}
    request = write_request(
        [
            ({**labels, "job": "cart"}, [(T0_MS, 10), (T0_MS + 1000, 30)]),
            (labels, [(T0_MS, 1), (T0_MS + 1000, 2)]),  # no job, no service label
        ]
    )
    garbage = b"\x89PNG" + bytes(range(256)) * 2048  # 512 KiB that are not snappy
    async with running(settings) as daemon:
        bootstrap, port = daemon.bootstrap_servers, daemon.http_port
        assert bootstrap
        assert port
        mixed = await post_write(port, request)
        unreadable = await post_write(port, garbage)
        letters = await read_keyed(bootstrap, settings.dlq_topic, 3, timeout_s=5)
        events = await read_keyed(bootstrap, settings.metric_topic, 1, timeout_s=5)
        dead_lettered = daemon.metrics.dead_letters._value.get()
    assert (mixed[0], unreadable[0]) == (204, 400)
    assert [event["values"]["requests"] for _, event in events] == [20.0]  # the rest counts
    assert len(letters) == 2
    rejected, unread = (letter for _, letter in letters)
    assert rejected["source"] == {
        "transport": "http",
        "topic": "/api/v1/write",
        "partition": None,
        "offset": None,
    }
    assert rejected["reason"] == "2 of 4 samples not mapped: no_service=2"
    assert base64.b64decode(rejected["original_b64"]) == encode_write_request(request)
    assert "snappy" in unread["reason"]
    assert unread["original_size"] == len(garbage)
    assert unread["truncated"] is True
    assert base64.b64decode(unread["original_b64"]) == garbage[: 64 * 1024]
    assert dead_lettered == 2

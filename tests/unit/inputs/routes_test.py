"""``POST /api/v1/write`` answers as Prometheus expects; Kafka is faked at its Protocol."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from guardian.errors import SinkError
from guardian.inputs.adapters.routes import (
    MAX_BODY_BYTES,
    MAX_DEAD_LETTER_BYTES,
    RemoteWriteRoutes,
)
from guardian.inputs.cumulative import SeriesState
from guardian.inputs.mapping import InputsFile, compile_mapping
from guardian.inputs.records import DeadLetters, OutRecord
from guardian.inputs.remote_write import RemoteWriteConverter, encode_write_request
from guardian.manual.tokens import TokenFile
from guardian.metrics import GuardianMetrics
from tests.support.manual import write_tokens
from tests.unit.inputs.builders import T0_MS, write_request

TOKEN = "tok-ingest-0123456789"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Encoding": "snappy"}
SERIES = {"__name__": "http_requests_total", "job": "cart", "environment": "production"}


class FakeSink:
    """Records what is written; can be not ready, failing, or slow."""

    def __init__(self) -> None:
        self.ready = True
        self.fail = False
        self.hold: asyncio.Event | None = None
        self.written: list[OutRecord] = []

    async def write(self, records: Sequence[OutRecord]) -> None:
        if self.hold is not None:
            await self.hold.wait()
        if self.fail:
            raise SinkError("broker away")
        self.written.extend(records)


@pytest.fixture
async def client(
    tmp_path: Path,
) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], FakeSink, RemoteWriteRoutes]]:
    tokens = TokenFile(write_tokens(tmp_path / "t.yaml", {"p": (["ingest"], TOKEN)}))
    tokens.load()
    sink = FakeSink()
    routes = RemoteWriteRoutes(
        RemoteWriteConverter(compile_mapping(InputsFile().prometheus), SeriesState()),
        sink,
        tokens,
        "metric.events",
        GuardianMetrics(),
        max_in_flight=1,
        write_timeout_s=0.5,
    )
    app = web.Application()
    routes.install(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client, sink, routes


def body(*samples: tuple[int, float]) -> bytes:
    return encode_write_request(write_request([({**SERIES, "code": "200"}, list(samples))]))


Client = tuple[TestClient[web.Request, web.Application], FakeSink, RemoteWriteRoutes]


async def test_204_only_after_the_events_are_written(client: Client) -> None:
    """The events are in the sink when the answer comes."""
    http, sink, _ = client
    response = await http.post(
        "/api/v1/write", data=body((T0_MS, 1), (T0_MS + 1000, 5)), headers=HEADERS
    )
    assert response.status == 204
    assert [(r.topic, r.key) for r in sink.written] == [("metric.events", b"cart")]


async def test_503_while_the_producer_is_not_connected(client: Client) -> None:
    """Prometheus retries it."""
    http, sink, _ = client
    sink.ready = False
    response = await http.post("/api/v1/write", data=body((T0_MS, 1)), headers=HEADERS)
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"


async def test_a_failed_write_is_503_and_leaves_the_state_for_the_retry(client: Client) -> None:
    """The retry computes the same increments: nothing is lost, nothing counted twice."""
    http, sink, _ = client
    assert (await http.post("/api/v1/write", data=body((T0_MS, 1)), headers=HEADERS)).status == 204
    sink.fail = True
    failed = await http.post("/api/v1/write", data=body((T0_MS + 1000, 5)), headers=HEADERS)
    assert failed.status == 503
    sink.fail = False
    retried = await http.post("/api/v1/write", data=body((T0_MS + 1000, 5)), headers=HEADERS)
    assert retried.status == 204
    assert len(sink.written) == 1


async def test_a_write_that_does_not_finish_in_time_is_503(client: Client) -> None:
    """A broker that does not acknowledge within the timeout."""
    http, sink, _ = client
    sink.hold = asyncio.Event()
    response = await http.post("/api/v1/write", data=body((T0_MS, 1)), headers=HEADERS)
    assert response.status == 503
    sink.hold.set()


async def test_429_when_too_many_writes_are_waiting(client: Client) -> None:
    """Backpressure: one write in flight is the cap here."""
    http, sink, _ = client
    sink.hold = asyncio.Event()
    first = asyncio.create_task(http.post("/api/v1/write", data=body((T0_MS, 1)), headers=HEADERS))
    await asyncio.sleep(0.1)
    second = await http.post("/api/v1/write", data=body((T0_MS, 1)), headers=HEADERS)
    sink.hold.set()
    assert second.status == 429
    assert second.headers["Retry-After"] == "1"
    assert (await first).status in (204, 503)


async def test_413_above_the_body_limit(client: Client) -> None:
    """A body larger than the cap is refused before it is read whole."""
    http, _, _ = client
    response = await http.post(
        "/api/v1/write", data=io.BytesIO(b"\0" * (MAX_BODY_BYTES + 1)), headers=HEADERS
    )
    assert response.status == 413


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Basic abc"}, 401), ({"Authorization": "Bearer nope"}, 401)],
)
async def test_unauthenticated_requests_are_401(
    client: Client, headers: dict[str, str], status: int
) -> None:
    """Only a token of the tokens file gets in."""
    http, _, _ = client
    response = await http.post("/api/v1/write", data=body((T0_MS, 1)), headers=headers)
    assert response.status == status
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_unreadable_bodies_are_400(client: Client) -> None:
    """Prometheus drops what can never be read."""
    http, _, _ = client
    response = await http.post("/api/v1/write", data=b"not snappy", headers=HEADERS)
    assert response.status == 400
    assert "snappy" in (await response.json())["detail"]


@pytest.fixture
async def lettered(tmp_path: Path) -> AsyncIterator[Client]:
    """The route with a dead-letter topic and room for three requests in flight."""
    tokens = TokenFile(write_tokens(tmp_path / "t.yaml", {"p": (["ingest"], TOKEN)}))
    tokens.load()
    sink = FakeSink()
    routes = RemoteWriteRoutes(
        RemoteWriteConverter(compile_mapping(InputsFile().prometheus), SeriesState()),
        sink,
        tokens,
        "metric.events",
        GuardianMetrics(),
        max_in_flight=3,
        write_timeout_s=0.3,
        dead_letters=DeadLetters("guardian.dlq", 1024 * 1024),
        clock_ms=lambda: T0_MS,
    )
    app = web.Application()
    routes.install(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client, sink, routes


async def test_a_request_carrying_a_series_being_written_waits_then_counts_nothing_twice(
    lettered: Client,
) -> None:
    """The resent sample waits for the first write, then finds it counted: no second event."""
    http, sink, routes = lettered
    assert (await http.post("/api/v1/write", data=body((T0_MS, 1)), headers=HEADERS)).status == 204
    sink.hold = asyncio.Event()
    sample = body((T0_MS + 1000, 5))
    first = asyncio.create_task(http.post("/api/v1/write", data=sample, headers=HEADERS))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(http.post("/api/v1/write", data=sample, headers=HEADERS))
    await asyncio.sleep(0.05)
    assert not second.done()  # waiting on the first, not writing
    sink.hold.set()
    assert ((await first).status, (await second).status) == (204, 204)
    assert len(sink.written) == 1
    assert routes.converter.state.claimed() == 0


async def test_a_request_that_waits_past_the_write_timeout_is_503(lettered: Client) -> None:
    """Behind two writes of the same series in turn, the third gives up: Prometheus retries."""
    http, sink, routes = lettered
    sink.hold = asyncio.Event()
    posts = []
    for _ in range(3):
        data = body((T0_MS, 1))
        posts.append(asyncio.create_task(http.post("/api/v1/write", data=data, headers=HEADERS)))
        await asyncio.sleep(0.05)
    answers = [await post for post in posts]
    sink.hold.set()
    assert [a.status for a in answers] == [503, 503, 503]
    assert "still being written" in (await answers[2].json())["detail"]
    assert routes.converter.state.claimed() == 0


async def test_rejected_samples_leave_one_letter_with_the_events(lettered: Client) -> None:
    """The letter is written with the events, before the 204; its body is kept up to the cap."""
    http, sink, _ = lettered
    nameless = {"__name__": "http_requests_total", "environment": "production", "code": "500"}
    data = encode_write_request(
        write_request([({**SERIES, "code": "200"}, [(T0_MS, 1)]), (nameless, [(T0_MS, 1)])])
    )
    response = await http.post("/api/v1/write", data=data, headers=HEADERS)
    assert response.status == 204
    [letter] = [orjson.loads(r.value) for r in sink.written]
    assert letter["reason"] == "1 of 2 samples not mapped: no_service=1"
    assert letter["original_size"] == len(data)
    assert len(base64.b64decode(letter["original_b64"])) == len(data)


async def test_an_unreadable_body_is_400_even_when_its_letter_cannot_be_written(
    lettered: Client,
) -> None:
    """Prometheus drops the body either way; a broker that is away costs only the letter."""
    http, sink, _ = lettered
    sink.fail = True
    response = await http.post("/api/v1/write", data=b"\x89" * (100 * 1024), headers=HEADERS)
    assert response.status == 400
    sink.fail = False
    again = await http.post("/api/v1/write", data=b"\x89" * (100 * 1024), headers=HEADERS)
    assert again.status == 400
    [letter] = [orjson.loads(r.value) for r in sink.written]
    assert letter["truncated"] is True
    assert len(base64.b64decode(letter["original_b64"])) == MAX_DEAD_LETTER_BYTES

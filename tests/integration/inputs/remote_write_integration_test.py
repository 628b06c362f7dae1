"""Remote write over a real broker and real HTTP: concurrent requests, a real Prometheus."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from guardian.config.settings import Settings
from guardian.inputs.adapters.routes import RemoteWriteRoutes
from guardian.inputs.adapters.writer import EventWriter
from guardian.inputs.cumulative import SeriesState
from guardian.inputs.mapping import InputsFile, compile_mapping
from guardian.inputs.records import EventSink, OutRecord
from guardian.inputs.remote_write import RemoteWriteConverter, decode_write_request
from guardian.kafka.admin import create_missing_topics
from guardian.manual.tokens import TokenFile
from guardian.metrics import GuardianMetrics
from tests.integration.inputs.prometheus import (
    Exporter,
    Target,
    prometheus,
    prometheus_config,
    prometheus_log,
    require_prometheus,
)
from tests.integration.inputs.support import (
    INGEST,
    INGEST_TOKEN,
    post_write,
    read_keyed,
    running,
)
from tests.support.manual import write_tokens
from tests.unit.inputs.builders import T0_MS, write_request

pytestmark = pytest.mark.kafka

SERIES = {"__name__": "http_requests_total", "job": "cart", "environment": "production"}


class HeldWriter:
    """The real writer, whose first write waits until a second write starts (or a second)."""

    def __init__(self, writer: EventWriter) -> None:
        self._writer = writer
        self.first_waiting = asyncio.Event()
        self._second = asyncio.Event()
        self.writes = 0

    @property
    def ready(self) -> bool:
        return self._writer.ready

    async def write(self, records: Sequence[OutRecord]) -> None:
        self.writes += 1
        if self.writes == 1:
            self.first_waiting.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._second.wait(), 1.0)
        else:
            self._second.set()
        await self._writer.write(records)


@asynccontextmanager
async def serving(
    settings: Settings, tmp_path: Path, wrap: Callable[[EventWriter], EventSink]
) -> AsyncIterator[tuple[int, EventSink]]:
    """The remote-write route on a real HTTP port, writing to the test broker."""
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    await create_missing_topics(settings, bootstrap, {settings.metric_topic: {}})
    tokens = TokenFile(write_tokens(tmp_path / "tokens.yaml", INGEST))
    tokens.load()
    async with EventWriter(settings, bootstrap) as writer:
        sink = wrap(writer)
        routes = RemoteWriteRoutes(
            RemoteWriteConverter(compile_mapping(InputsFile().prometheus), SeriesState()),
            sink,
            tokens,
            settings.metric_topic,
            GuardianMetrics(),
        )
        app = web.Application()
        routes.install(app)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            server = site._server
            assert isinstance(server, asyncio.Server)
            yield server.sockets[0].getsockname()[1], sink
        finally:
            await runner.cleanup()


async def test_two_requests_in_flight_with_the_same_samples_count_them_once(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """A reshard sends a sample twice while the first send is still being written: one count."""
    settings = settings_factory()
    ok, failed = {**SERIES, "code": "200"}, {**SERIES, "code": "500"}
    async with serving(settings, tmp_path, HeldWriter) as (port, sink):
        assert isinstance(sink, HeldWriter)
        baseline = write_request([(ok, [(T0_MS, 10)]), (failed, [(T0_MS, 1)])])
        assert (await post_write(port, baseline))[0] == 204  # baselines only: no event
        first = asyncio.create_task(
            post_write(
                port, write_request([(ok, [(T0_MS + 1000, 30)]), (failed, [(T0_MS + 1000, 6)])])
            )
        )
        await asyncio.wait_for(sink.first_waiting.wait(), 10)
        # The same sample of the 200 series again, and the next one, while the first is held.
        second = await post_write(
            port, write_request([(ok, [(T0_MS + 1000, 30), (T0_MS + 2000, 45)])])
        )
        assert (await first)[0] == 204
        assert second[0] == 204
        bootstrap = settings.bootstrap_servers
        assert bootstrap
        events = await read_keyed(bootstrap, settings.metric_topic, 3, timeout_s=4)
    counted = [
        (event["timestamp"] - T0_MS, event["values"]["requests"], event["values"]["errors"])
        for _, event in events
    ]
    assert sorted(counted) == [(1000, 25.0, 5.0), (2000, 15.0, 0.0)]


async def test_a_real_prometheus_gets_204_for_unusable_samples_and_each_request_one_letter(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """A target labelled with a cohort the guardian does not know: dead letters, no retries."""
    require_prometheus()
    settings = settings_factory(tokens_file=write_tokens(tmp_path / "tokens.yaml", INGEST))
    exporter = Exporter()
    exporter.start()
    try:
        target = Target(exporter.port, {"service": "cart", "cohort": "blue"})
        async with running(settings) as daemon:
            bootstrap, port = daemon.bootstrap_servers, daemon.http_port
            assert bootstrap
            assert port
            with prometheus(prometheus_config([target], port, INGEST_TOKEN), tmp_path):
                letters: list[tuple[bytes | None, dict[str, Any]]] = []
                deadline = asyncio.get_running_loop().time() + 30
                while len(letters) < 2 and asyncio.get_running_loop().time() < deadline:
                    exporter.serve(20, error_rate=0.1, latency_s=0.05)
                    letters = await read_keyed(bootstrap, settings.dlq_topic, 2, timeout_s=1)
            answered = daemon.metrics.input_batches.labels("remote_write", "204")._value.get()
            refused = daemon.metrics.input_batches.labels("remote_write", "400")._value.get()
            events = await read_keyed(bootstrap, settings.metric_topic, 1, timeout_s=1)
    finally:
        exporter.stop()
    assert len(letters) >= 2, prometheus_log(tmp_path)
    for _, letter in letters:
        assert letter["source"] == {
            "transport": "http",
            "topic": "/api/v1/write",
            "partition": None,
            "offset": None,
        }
        assert "unknown_cohort=" in letter["reason"]
        assert not letter["truncated"]
        body = decode_write_request(base64.b64decode(letter["original_b64"]))
        assert any(label.value == "blue" for ts in body.timeseries for label in ts.labels)
    assert answered >= len(letters)  # taken: Prometheus does not send them again
    assert refused == 0
    assert events == []  # nothing of the unknown cohort is judged

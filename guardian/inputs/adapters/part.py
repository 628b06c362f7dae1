"""``Inputs``: OTLP and CDEvents from Kafka, Prometheus remote write: one part the daemon wires in.

Start reads ``inputs.yaml`` (``ConfigError`` when invalid, so ``guardian
run`` refuses to start), loads the tokens, connects the producer both inputs
write with and, when ``otlp_topics`` is set, creates those topics if missing
(with ``create_topics``) and joins the OTLP bridge's group; likewise for
``cdevent_topics`` (CD tools' topics of their own) and the CDEvents bridge.
``install`` adds ``POST /api/v1/write`` to the control plane; ``run`` bridges
until the daemon drains (it returns at once without bridged topics).
Each input keeps its own bounded cumulative state (``inputs_max_series``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from types import TracebackType

from aiohttp import web

from guardian.config.settings import Settings
from guardian.delivery import Deadline
from guardian.errors import ConfigError
from guardian.inputs.adapters.bridge import OtlpBridge
from guardian.inputs.adapters.deploys import DeployBridge
from guardian.inputs.adapters.routes import RemoteWriteRoutes
from guardian.inputs.adapters.writer import EventWriter
from guardian.inputs.cumulative import SeriesState
from guardian.inputs.mapping import compile_mapping, load_inputs
from guardian.inputs.otlp import OtlpConverter
from guardian.inputs.records import DeadLetters
from guardian.inputs.remote_write import RemoteWriteConverter
from guardian.kafka.admin import create_missing_topics
from guardian.manual.tokens import TokenFile
from guardian.metrics import GuardianMetrics


class Inputs:
    """The metric inputs from the ecosystem, as an async context manager."""

    def __init__(
        self,
        settings: Settings,
        bootstrap_servers: str,
        metrics: GuardianMetrics,
        *,
        cdevent_topics: Sequence[str] = (),
    ) -> None:
        self._settings = settings
        self._cdevent_topics = list(cdevent_topics)
        self._bootstrap = bootstrap_servers
        self._metrics = metrics
        self.writer = EventWriter(settings, bootstrap_servers)
        self.tokens = TokenFile(settings.tokens_file)
        self.routes: RemoteWriteRoutes | None = None
        self.bridge: OtlpBridge | None = None
        self.deploys: DeployBridge | None = None

    async def start(self) -> None:
        """Read the mapping and tokens, connect the producer and the OTLP bridge."""
        s = self._settings
        mapping = load_inputs(s.inputs_file)
        self.tokens.load()
        await self.writer.start()
        prometheus = compile_mapping(mapping.prometheus, mapping.max_interval)
        self.routes = RemoteWriteRoutes(
            RemoteWriteConverter(
                prometheus, SeriesState(s.inputs_max_series, prometheus.max_interval_ms)
            ),
            self.writer,
            self.tokens,
            s.metric_topic,
            self._metrics,
            dead_letters=DeadLetters(s.dlq_topic, s.dlq_max_original_bytes),
        )
        if s.otlp_topics:
            if s.create_topics:
                await create_missing_topics(s, self._bootstrap, {key: {} for key in s.otlp_topics})
            otlp = compile_mapping(mapping.otlp, mapping.max_interval)
            converter = OtlpConverter(
                otlp,
                SeriesState(s.inputs_max_series, otlp.max_interval_ms),
                started_ms=time.time_ns() // 1_000_000,
            )
            self.bridge = OtlpBridge(s, self._bootstrap, converter, self.writer, self._metrics)
            await self.bridge.start()
        if self._cdevent_topics:
            if s.create_topics:
                await create_missing_topics(
                    s, self._bootstrap, {key: {} for key in self._cdevent_topics}
                )
            self.deploys = DeployBridge(
                s, self._bootstrap, self._cdevent_topics, self.writer, self._metrics
            )
            await self.deploys.start()

    def install(self, app: web.Application) -> None:
        """Add the remote-write route to the control plane's application."""
        if self.routes is None:
            raise ConfigError("the inputs must be started before their routes are installed")
        self.routes.install(app)

    async def run(
        self, stop: asyncio.Event, drain_deadline: Callable[[], Deadline | None] | None = None
    ) -> None:
        """Bridge OTLP records and CDEvents until ``stop`` is set (nothing to do without topics).

        ``drain_deadline``: the daemon's, so the bridges give up retrying when
        its Kafka loop does.
        """
        bridges = [b for b in (self.bridge, self.deploys) if b is not None]
        async with asyncio.TaskGroup() as tasks:
            for bridge in bridges:
                tasks.create_task(bridge.run(stop, drain_deadline), name=bridge.group_id)

    async def stop(self) -> None:
        """Leave the bridge's group and disconnect the producer; safe to call twice."""
        for bridge in (self.bridge, self.deploys):
            if bridge is not None:
                await bridge.stop()
        await self.writer.stop()

    async def __aenter__(self) -> Inputs:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

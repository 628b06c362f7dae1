"""``ManualRollbacks``: the manual rollback feature as one part the daemon wires in.

Opens the Kafka request log (read fully before the API answers), installs
the ``/v1`` routes and ``/openapi.json`` on the control plane, and runs the
background work: tailing the request log and expiring requests whose
deadline passed. Tokens are read from ``settings.tokens_file``; without one
every API call is answered 401.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType

import structlog
from aiohttp import web

from guardian.api.routes import RollbackRoutes
from guardian.config.settings import Settings
from guardian.engine.decision import DeployInfo
from guardian.errors import GuardianError
from guardian.kafka.request_log import KafkaOutputWriter, KafkaRequestLog
from guardian.kafka.sink import KafkaSink
from guardian.manual.policy import ManualPolicy
from guardian.manual.service import ManualService
from guardian.manual.tokens import TokenFile
from guardian.metrics import GuardianMetrics

log = structlog.get_logger(__name__)

EXPIRY_INTERVAL_S = 1.0


def wall_clock_ms() -> int:
    """Milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class ManualRollbacks:
    """Manual rollbacks with second-person approval, as an async context manager."""

    def __init__(
        self,
        settings: Settings,
        bootstrap_servers: str,
        sink: KafkaSink,
        deploy_lookup: Callable[[str, str], DeployInfo | None],
        metrics: GuardianMetrics,
        *,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        # ``sink`` is accepted for wiring symmetry but not written to: its ``flush`` is shared
        # with the pipeline, whose offset commits rely on flushing exactly its own records.
        self._sink = sink
        self._metrics = metrics
        self.request_log = KafkaRequestLog(settings, bootstrap_servers)
        self.tokens = TokenFile(settings.tokens_file)
        signing_key = (
            settings.signing_key.get_secret_value().encode() if settings.signing_key else None
        )
        request_log = self.request_log

        def lookup(service: str, environment: str) -> DeployInfo | None:
            # This replica's engine first; else what the owning replica last snapshotted.
            return deploy_lookup(service, environment) or request_log.deploy_of(
                service, environment
            )

        self.service = ManualService(
            self.request_log,
            KafkaOutputWriter(self.request_log, settings),
            lookup,
            policy=ManualPolicy.from_settings(settings),
            clock_ms=clock_ms,
            signing_key=signing_key,
            on_command=lambda: metrics.rollback_commands.labels("manual").inc(),
        )
        self._routes = RollbackRoutes(self.service, self.tokens)
        self._tokens_configured = settings.tokens_file is not None

    def install(self, app: web.Application) -> None:
        """Add ``/v1/*`` and ``/openapi.json`` to the control plane's application."""
        self._routes.install(app)

    async def start(self) -> None:
        """Load the tokens (ConfigError if invalid) and read the request log to its end."""
        if not self._tokens_configured:
            log.warning(
                "tokens_not_configured",
                note="no tokens file (--tokens / GUARDIAN_TOKENS_FILE): the manual rollback API "
                "answers 401 to everyone",
            )
        self.tokens.load()
        await self.request_log.start()

    async def run(self) -> None:
        """Tail the request log and expire overdue requests, until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.request_log.tail(), name="request-log-tail")
            tasks.create_task(self._expire_loop(), name="request-expiry")

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_INTERVAL_S)
            try:
                await self.service.expire_due()
            except GuardianError as exc:  # the broker is away: try again next tick
                log.warning("request_expiry_failed", error=str(exc))

    async def stop(self) -> None:
        """Disconnect; safe to call twice."""
        await self.request_log.stop()

    async def __aenter__(self) -> ManualRollbacks:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

"""The executor's HTTP endpoints: ``/healthz``, ``/readyz`` and ``/metrics``.

Kept apart from the daemon's control plane (``guardian.daemon.http``): the
executor has no API to install and sits beside the daemon in the layers.
Ready means the broker answered, the ledger was read back and the targets
and kubeconfig loaded: before that, a command could be applied twice.
"""

from __future__ import annotations

from types import TracebackType

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from guardian.executor.metrics import ExecutorMetrics


class ExecutorHttp:
    """Serves health, readiness and metrics as an async context manager."""

    def __init__(self, host: str, port: int, metrics: ExecutorMetrics) -> None:
        self._host = host
        self._port = port
        self._metrics = metrics
        self._runner: web.AppRunner | None = None
        self.ready = False
        self.bound_port: int | None = None

    def build_app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_text)
        return app

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def _readyz(self, _request: web.Request) -> web.Response:
        return web.json_response({"ready": self.ready}, status=200 if self.ready else 503)

    async def _metrics_text(self, _request: web.Request) -> web.Response:
        self._metrics.ready.set(1 if self.ready else 0)
        payload = generate_latest(self._metrics.registry)
        return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        """Bind and serve."""
        runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port, reuse_address=True)
        await site.start()
        self._runner = runner
        sockets = getattr(site._server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self._port

    async def stop(self) -> None:
        """Stop serving; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> ExecutorHttp:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

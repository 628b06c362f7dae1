"""The HTTP control plane: /healthz, /readyz, /metrics, and the routes other parts add.

An aiohttp application served on ``--http``. Parts of the guardian that need
endpoints (the manual rollback API) pass a ``RouteInstaller`` so this module
stays small and knows nothing of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from guardian.daemon.health import Readiness
from guardian.metrics import GuardianMetrics

RouteInstaller = Callable[[web.Application], None]


class ControlPlane:
    """Serves health, readiness and metrics (plus installed routes) as an async context manager."""

    def __init__(
        self,
        host: str,
        port: int,
        readiness: Readiness,
        metrics: GuardianMetrics,
        installers: Sequence[RouteInstaller] = (),
    ) -> None:
        self._host = host
        self._port = port
        self._readiness = readiness
        self._metrics = metrics
        self._installers = installers
        self._runner: web.AppRunner | None = None
        self.bound_port: int | None = None

    def build_app(self) -> web.Application:
        """The aiohttp application (tests drive it without a socket)."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_text)
        for install in self._installers:
            install(app)
        return app

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def _readyz(self, _request: web.Request) -> web.Response:
        ready = self._readiness.ready
        self._metrics.ready.set(1 if ready else 0)
        body = {
            "ready": ready,
            "conditions": self._readiness.conditions,
            "failing": self._readiness.failing(),
        }
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics_text(self, _request: web.Request) -> web.Response:
        self._metrics.ready.set(1 if self._readiness.ready else 0)
        payload = generate_latest(self._metrics.registry)
        return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        """Bind and serve."""
        runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port, reuse_address=True)
        await site.start()
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self._port

    async def stop(self) -> None:
        """Stop serving; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> ControlPlane:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

"""An API test client over the real routes, with the request log and outputs in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from guardian.api.routes import RollbackRoutes
from guardian.manual.policy import ManualPolicy
from guardian.manual.service import ManualService
from guardian.manual.tokens import TokenFile
from guardian.manual.view import MemoryRequestLog
from tests.support.manual import Clock, Lookup, RecordingWriter, make_deploy, write_tokens


@dataclass
class Api:
    """The client and the fakes behind it."""

    client: TestClient[web.Request, web.Application]
    writer: RecordingWriter
    clock: Clock
    log: MemoryRequestLog


def build_app(tmp_path: Path) -> tuple[web.Application, RecordingWriter, Clock, MemoryRequestLog]:
    """The aiohttp app with the manual rollback routes over in-memory fakes."""
    tokens = TokenFile(write_tokens(tmp_path / "tokens.yaml"))
    tokens.load()
    log, writer, clock = MemoryRequestLog(), RecordingWriter(), Clock()
    service = ManualService(
        log,
        writer,
        Lookup(make_deploy("d-1"), make_deploy("d-2", service="cart")),
        policy=ManualPolicy(),
        clock_ms=clock,
        signing_key=b"key",
    )
    app = web.Application()
    app.router.add_get("/healthz", _plain)
    RollbackRoutes(service, tokens).install(app)
    return app, writer, clock, log


async def _plain(_request: web.Request) -> web.Response:
    return web.Response(text="alive")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """A test client on the API."""
    app, writer, clock, log = build_app(tmp_path)
    async with TestClient(TestServer(app)) as client:
        yield Api(client, writer, clock, log)

"""Helpers for manual rollback tests: deploys, token files, an output writer that records."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from aiohttp import web

from guardian.engine.decision import DeployInfo
from guardian.errors import SinkError
from guardian.manual.records import ManualOutput
from guardian.manual.tokens import yaml_entry
from guardian.ports import free_port

# identity -> (roles, token)
PEOPLE: dict[str, tuple[list[str], str]] = {
    "alice": (["SRE"], "tok-alice-0123456789"),
    "bob": (["DevOps Lead"], "tok-bob-0123456789"),
    "carol": (["developer"], "tok-carol-0123456789"),
}


def token_of(who: str) -> str:
    """The test token of a person in ``PEOPLE``."""
    return PEOPLE[who][1]


def auth(who: str) -> dict[str, str]:
    """The Authorization header of a person in ``PEOPLE``."""
    return {"Authorization": f"Bearer {token_of(who)}"}


def write_tokens(path: Path, people: dict[str, tuple[list[str], str]] = PEOPLE) -> Path:
    """Write a tokens file holding the hashes of ``people``'s tokens."""
    lines = ["tokens:"] + [yaml_entry(i, roles, token) for i, (roles, token) in people.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_deploy(
    deploy_id: str = "d-1",
    service: str = "checkout",
    environment: str = "production",
    strategy: str = "canary",
    component: str = "application",
) -> DeployInfo:
    """A deploy to roll back."""
    return DeployInfo(
        deploy_id=deploy_id,
        service=service,
        environment=environment,
        version="2.4.1",
        previous_version="2.4.0",
        strategy=strategy,
        component=component,
        regions=("us-east",),
        started_at_ms=1_795_478_400_000,
    )


class Lookup:
    """A deploy lookup over a dict (service, environment) -> deploy."""

    def __init__(self, *deploys: DeployInfo) -> None:
        self.deploys = {(d.service, d.environment): d for d in deploys}

    def __call__(self, service: str, environment: str) -> DeployInfo | None:
        return self.deploys.get((service, environment))


class RecordingWriter:
    """An output writer that keeps what it was given; ``fail`` makes it refuse."""

    def __init__(self) -> None:
        self.outputs: list[ManualOutput] = []
        self.fail = False

    async def write(self, outputs: Sequence[ManualOutput]) -> None:
        """Record the outputs, or raise SinkError when ``fail`` is set."""
        if self.fail:
            raise SinkError("broker away")
        self.outputs.extend(outputs)


class Clock:
    """A settable millisecond clock."""

    def __init__(self, now_ms: int = 1_795_478_500_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@contextlib.contextmanager
def serve_in_thread(app: web.Application) -> Iterator[str]:
    """Serve ``app`` on a free port from a background thread (for sync clients); yield its URL."""
    port = free_port()
    ready, stop = threading.Event(), threading.Event()

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        while not stop.is_set():  # noqa: ASYNC110 - a threading.Event set from another thread
            await asyncio.sleep(0.02)
        await runner.cleanup()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(10):  # pragma: no cover - the server failed to start
        raise RuntimeError("test API server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(10)

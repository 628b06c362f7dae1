"""Writing a judged batch's outputs until the broker acknowledges them: the one retry loop.

Both consume loops — the daemon's Kafka loop and the MQTT loop — deliver a
batch through ``deliver_with_retry``: a retriable ``SinkError`` (a broker
that is briefly away) is retried with exponential backoff, readiness reports
``broker_connected`` false meanwhile and true once written; a non-retriable
one is raised at once. A ``Deadline`` (the daemon's drain) turns the next
retry that would end past it into a non-retriable ``SinkError``, so a drain
ends in time and the batch's offsets stay uncommitted.

Limits: retrying is safe because outputs carry deterministic ids; the
function knows nothing of what it delivers. It sits below both the daemon
and the MQTT adapter so that both can call it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from guardian.errors import SinkError

log = structlog.get_logger(__name__)

RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 5.0


class ReadinessReporter(Protocol):
    """Where delivery reports whether the broker takes writes (``daemon.health.Readiness``)."""

    def set(self, name: str, value: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class Deadline:
    """Stop retrying once ``time.monotonic()`` would pass ``at``; ``reason`` says why."""

    at: float
    reason: str


def _no_deadline() -> Deadline | None:
    return None


async def deliver_with_retry(
    deliver: Callable[[], Awaitable[None]],
    *,
    transport: str,
    readiness: ReadinessReporter | None = None,
    deadline: Callable[[], Deadline | None] = _no_deadline,
    initial_s: float = RETRY_INITIAL_S,
    max_s: float = RETRY_MAX_S,
) -> None:
    """Call ``deliver`` until it succeeds, backing off on retriable ``SinkError``s.

    ``deadline`` is asked after each failure (it may appear while retrying,
    when a drain starts); a retry that would start past it is not made.
    """
    delay = initial_s
    while True:
        try:
            await deliver()
        except SinkError as exc:
            if not exc.retriable:
                raise
            if readiness is not None:
                readiness.set("broker_connected", False)
            limit = deadline()
            if limit is not None and time.monotonic() + delay > limit.at:
                raise SinkError(
                    f"delivery abandoned: {limit.reason} ({exc})", retriable=False
                ) from exc
            log.warning("delivery_retry", transport=transport, error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_s)
            continue
        if readiness is not None:
            readiness.set("broker_connected", True)
        return

"""Retry policy of deliveries: exponential backoff with jitter, ``Retry-After`` first.

A retriable ``DeliveryError`` is tried again forever — the outbox holds the
offset meanwhile, so nothing is lost while Slack or SMTP is away — with
delays ``initial * multiplier**n`` capped at ``backoff_max_s``, each moved by
up to ``± jitter`` of itself. A server's ``Retry-After`` replaces the
computed delay. A permanent error is raised to the caller at once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from guardian.errors import SinkError
from guardian.notify.options import NotifyOptions

T = TypeVar("T")


class DeliveryError(SinkError):
    """Slack or SMTP refused or failed a delivery; ``retry_after_s`` when the server said so."""

    def __init__(
        self, message: str, *, retriable: bool, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message, retriable=retriable)
        self.retry_after_s = retry_after_s


def backoff_delay(options: NotifyOptions, attempt: int, rng: random.Random) -> float:
    """Delay before retry number ``attempt`` (0-based), jittered, never above the cap."""
    base = min(
        options.backoff_max_s, options.backoff_initial_s * options.backoff_multiplier**attempt
    )
    spread = base * options.backoff_jitter
    return min(options.backoff_max_s, max(0.0, base + rng.uniform(-spread, spread)))


async def with_retries(
    call: Callable[[], Awaitable[T]],
    options: NotifyOptions,
    *,
    on_retry: Callable[[DeliveryError, int, float], None],
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Await ``call`` until it succeeds; retry retriable errors, raise permanent ones."""
    rng = rng or random.Random()  # noqa: S311 - jitter, not security
    attempt = 0
    while True:
        try:
            return await call()
        except DeliveryError as exc:
            if not exc.retriable:
                raise
            delay = (
                exc.retry_after_s
                if exc.retry_after_s is not None
                else backoff_delay(options, attempt, rng)
            )
            on_retry(exc, attempt, delay)
            attempt += 1
            await sleep(delay)

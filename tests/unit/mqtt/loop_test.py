"""Delivery retry of the MQTT loop against an in-memory sink that fails on purpose."""

from __future__ import annotations

import pytest

from guardian.daemon.health import Readiness
from guardian.daemon.pipeline import BatchResult, Pipeline
from guardian.engine.decision import Decision
from guardian.errors import SinkError
from guardian.metrics import GuardianMetrics
from guardian.mqtt import loop
from guardian.wire.events import InputEvent


class _NoDecisions:
    """An engine that never decides (the pipeline's DecisionEngine protocol)."""

    def process(self, event: InputEvent) -> list[Decision]:
        return []

    def advance(self, now_ms: int) -> list[Decision]:
        return []


class _FlakySink:
    """A RecordSink whose first ``failures`` flushes raise the given error."""

    def __init__(self, failures: int, error: SinkError) -> None:
        self.failures = failures
        self.error = error
        self.flushes = 0

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        return None

    async def flush(self) -> None:
        self.flushes += 1
        if self.flushes <= self.failures:
            raise self.error


def _pipeline(sink: _FlakySink) -> Pipeline:
    topics = {"command": "c", "audit": "a", "notification": "n", "dlq": "d", "state": "s"}
    return Pipeline(_NoDecisions(), sink, topics, GuardianMetrics())  # type: ignore[arg-type]


async def test_retriable_sink_errors_are_retried_until_delivered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two retriable failures are retried with backoff and readiness recovers afterwards."""
    monkeypatch.setattr(loop, "RETRY_INITIAL_S", 0.001)
    sink = _FlakySink(2, SinkError("broker away"))
    readiness = Readiness()
    await loop.deliver_with_retry(_pipeline(sink), BatchResult(), readiness)
    assert sink.flushes == 3
    assert readiness.conditions["broker_connected"] is True


async def test_non_retriable_sink_error_propagates() -> None:
    """A non-retriable SinkError is not retried: it stops the loop."""
    sink = _FlakySink(1, SinkError("denied", retriable=False))
    with pytest.raises(SinkError, match="denied"):
        await loop.deliver_with_retry(_pipeline(sink), BatchResult())
    assert sink.flushes == 1

"""Delivery retries of the daemon: endless while running, bounded by the grace period in a drain."""

from __future__ import annotations

from typing import Any, cast

import pytest
from structlog.testing import capture_logs

from guardian.config.settings import Settings
from guardian.daemon.app import Daemon
from guardian.daemon.pipeline import BatchResult, Pipeline
from guardian.errors import SinkError

RESULT = cast("BatchResult", object())


class AwayBroker:
    """A pipeline stand-in whose ``deliver`` fails retriably ``failures`` times, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def deliver(self, result: Any) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise SinkError("broker away")


async def test_a_running_daemon_retries_delivery_until_the_broker_is_back() -> None:
    """Not draining: retriable failures back off and the batch is delivered in the end."""
    daemon = Daemon(Settings(grace_period_s=0.1))
    pipeline = AwayBroker(failures=3)
    with capture_logs() as logs:
        await daemon._deliver(cast("Pipeline", pipeline), RESULT)
    assert pipeline.calls == 4
    assert [entry["event"] for entry in logs].count("delivery_retry") == 3
    assert daemon.readiness.conditions["broker_connected"] is True


async def test_a_drain_gives_up_delivery_when_the_grace_period_is_spent() -> None:
    """Draining with the broker away: a non-retriable SinkError once the grace period is spent."""
    daemon = Daemon(Settings(grace_period_s=0.5))
    daemon.request_stop()
    pipeline = AwayBroker(failures=1_000)
    with pytest.raises(SinkError, match=r"grace period of 0\.5s is spent") as caught:
        await daemon._deliver(cast("Pipeline", pipeline), RESULT)
    assert caught.value.retriable is False
    assert pipeline.calls == 3  # at 0, 0.1 and 0.3 s; a try at 0.7 s would be past the grace
    assert daemon.readiness.conditions["broker_connected"] is False


async def test_a_failure_retrying_cannot_fix_is_raised_at_once() -> None:
    """A non-retriable SinkError is not retried, draining or not."""
    daemon = Daemon(Settings())

    class Refusing:
        async def deliver(self, result: Any) -> None:
            raise SinkError("record too large", retriable=False)

    with pytest.raises(SinkError, match="too large"):
        await daemon._deliver(cast("Pipeline", Refusing()), RESULT)

"""Fetch and commit retries of the Kafka source, against a stand-in consumer.

A broker that is briefly away is retried with backoff; one that stays away
past ``connect_timeout_s``, or an error retrying cannot fix, ends in one
non-retriable SourceError. The broker paths themselves are covered by the
integration and e2e tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from structlog.testing import capture_logs

from guardian.config.settings import Settings
from guardian.errors import SourceError
from guardian.kafka.source import KafkaSource

TP = TopicPartition("metrics", 0)


class Record:
    """The fields of an aiokafka ConsumerRecord the source reads."""

    offset = 5
    key = b"checkout"
    value = b"{}"
    timestamp = 1_000
    headers: tuple[tuple[str, bytes], ...] = ()


class StandInConsumer:
    """Fails each call with the next scripted error (None = succeed, "hang" = never answer)."""

    def __init__(self, script: list[KafkaError | str | None]) -> None:
        self._script = script
        self.calls = 0
        self.committed: dict[TopicPartition, int] = {}

    async def _step(self) -> None:
        self.calls += 1
        outcome = self._script.pop(0) if self._script else None
        if outcome == "hang":
            await asyncio.Event().wait()
        if isinstance(outcome, KafkaError):
            raise outcome

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        await self._step()
        return {TP: [Record()]}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await self._step()
        self.committed.update(offsets)


def started(consumer: StandInConsumer, budget_s: float = 5.0) -> KafkaSource:
    """A source whose consumer is the stand-in, with a retry budget of ``budget_s``."""
    source = KafkaSource(Settings(connect_timeout_s=budget_s), "unused:9092", ["metrics"])
    source._consumer = consumer
    return source


async def fetch(source: KafkaSource) -> object:
    return await source.getmany(timeout_ms=10)


async def commit(source: KafkaSource) -> object:
    await source.commit({("metrics", 0): 6})
    return None


OPERATIONS = [pytest.param(fetch, id="fetch"), pytest.param(commit, id="commit")]
Operation = Callable[[KafkaSource], Any]


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_broker_briefly_away_is_retried_with_backoff(operation: Operation) -> None:
    """Two connection errors, then success: the caller sees only the result."""
    consumer = StandInConsumer([KafkaConnectionError(), KafkaConnectionError(), None])
    with capture_logs() as logs:
        result = await operation(started(consumer))
    assert consumer.calls == 3
    retries = [entry for entry in logs if entry["event"] == "source_retry"]
    assert [entry["retry_in_s"] for entry in retries] == [0.2, 0.4]
    assert result is None or len(result) == 1


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_broker_that_stays_away_ends_in_one_non_retriable_error(
    operation: Operation,
) -> None:
    """Past connect_timeout_s the source gives up with a message naming the budget."""
    consumer = StandInConsumer([KafkaConnectionError()] * 10)
    with pytest.raises(SourceError, match=r"connect_timeout_s=0\.5s") as caught:
        await operation(started(consumer, budget_s=0.5))
    assert caught.value.retriable is False
    assert consumer.calls == 2  # at 0 s and 0.2 s; the next try would be past the budget


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_an_error_retrying_cannot_fix_is_not_retried(operation: Operation) -> None:
    """An authorization failure ends at once, as a non-retriable SourceError."""
    consumer = StandInConsumer([TopicAuthorizationFailedError()])
    with pytest.raises(SourceError, match="failed") as caught:
        await operation(started(consumer))
    assert caught.value.retriable is False
    assert consumer.calls == 1


async def test_a_commit_that_never_answers_is_bounded_by_the_budget() -> None:
    """aiokafka retries a commit to an absent broker without end; the budget still holds."""
    consumer = StandInConsumer(["hang"])
    with pytest.raises(SourceError, match="did not succeed within") as caught:
        await started(consumer, budget_s=0.2).commit({("metrics", 0): 6})
    assert caught.value.retriable is False


async def test_a_commit_refused_by_a_rebalance_is_logged_not_retried() -> None:
    """The rebalance waits for the caller, so retrying would spin; the next owner re-reads."""
    consumer = StandInConsumer([CommitFailedError()])
    with capture_logs() as logs:
        await started(consumer).commit({("metrics", 0): 6})
    assert consumer.calls == 1
    assert consumer.committed == {}
    assert [entry["event"] for entry in logs] == ["commit_refused_by_rebalance"]
    assert logs[0]["partitions"] == ["metrics-0"]


async def test_nothing_to_commit_asks_nothing() -> None:
    """An empty commit does not reach the consumer."""
    consumer = StandInConsumer([])
    await started(consumer).commit({})
    assert consumer.calls == 0

"""The MQTT consume loop: batch → judge → deliver (retrying) → PUBACK, until told to stop.

It is the MQTT twin of the daemon's Kafka loop and takes the daemon's
pipeline, so MQTT events go through the same decode, engine and dead-letter
path (dead letters record the MQTT topic); it delivers through the same
retry loop (``guardian.delivery``). It knows the pipeline only through the
small ``BatchJudge`` protocol, so this adapter imports nothing of the
daemon. The daemon runs it as one more task in its ``TaskGroup``. A stop
request is honoured between batches: the batch in hand is finished, written
and acknowledged first, retrying a sink that is away only until the daemon's
drain deadline (the one its Kafka loop keeps); past it the loop ends with a
non-retriable ``SinkError`` and the batch stays un-acknowledged, for the
broker to send again.

Limits: a sink that stays away blocks this loop (with backoff) exactly as it
blocks the Kafka loop; MQTT messages meanwhile wait un-acknowledged at the
broker, which stops sending more once its in-flight window is full.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import structlog

from guardian import delivery
from guardian.delivery import Deadline
from guardian.kafka.source import RawRecord
from guardian.mqtt.source import MqttSource, ReadinessReporter

log = structlog.get_logger(__name__)

POLL_S = 0.2
RETRY_INITIAL_S = delivery.RETRY_INITIAL_S
RETRY_MAX_S = delivery.RETRY_MAX_S

Result = TypeVar("Result")


class BatchJudge(Protocol[Result]):
    """What the loop needs of the daemon's pipeline: judge a batch, then write its outputs."""

    def judge(self, records: Sequence[RawRecord], transport: str = ...) -> Result: ...

    async def deliver(self, result: Result) -> None: ...


async def run_mqtt(
    source: MqttSource,
    pipeline: BatchJudge[Result],
    stop: asyncio.Event,
    readiness: ReadinessReporter | None = None,
    drain_deadline: Callable[[], Deadline | None] | None = None,
) -> None:
    """Judge and deliver MQTT batches until ``stop`` is set; raise only on fatal errors.

    ``readiness`` (optional) gets ``broker_connected`` False while output
    delivery is being retried, as the Kafka loop reports it.
    ``drain_deadline`` (the daemon's): once it gives a deadline, delivery
    is not retried past it.
    """
    while not stop.is_set():
        records = await source.next_batch(POLL_S)
        if not records:
            continue
        result = pipeline.judge(records, transport="mqtt")
        await deliver_with_retry(pipeline, result, readiness, drain_deadline)
        await source.ack(records)
    log.info("mqtt_loop_stopped")


async def deliver_with_retry(
    pipeline: BatchJudge[Result],
    result: Result,
    readiness: ReadinessReporter | None = None,
    drain_deadline: Callable[[], Deadline | None] | None = None,
) -> None:
    """Write a batch's outputs, backing off on a retriable SinkError until they are written."""
    await delivery.deliver_with_retry(
        lambda: pipeline.deliver(result),
        transport="mqtt",
        readiness=readiness,
        deadline=drain_deadline or _not_draining,
        initial_s=RETRY_INITIAL_S,
        max_s=RETRY_MAX_S,
    )


def _not_draining() -> Deadline | None:
    return None

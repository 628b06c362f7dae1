"""The MQTT consume loop: batch → judge → deliver (retrying) → PUBACK, until told to stop.

It is the MQTT twin of the daemon's Kafka loop and shares its pipeline, so
MQTT events go through the same decode, engine and dead-letter path (dead
letters record the MQTT topic). The daemon runs it as one more task in its
``TaskGroup``. A stop request is honoured between batches: the batch in hand
is finished, written and acknowledged first.

Limits: a sink that stays away blocks this loop (with backoff) exactly as it
blocks the Kafka loop; MQTT messages meanwhile wait un-acknowledged at the
broker, which stops sending more once its in-flight window is full.
"""

from __future__ import annotations

import asyncio

import structlog

from guardian.daemon.pipeline import BatchResult, Pipeline
from guardian.errors import SinkError
from guardian.mqtt.source import MqttSource, ReadinessReporter

log = structlog.get_logger(__name__)

POLL_S = 0.2
RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 5.0


async def run_mqtt(
    source: MqttSource,
    pipeline: Pipeline,
    stop: asyncio.Event,
    readiness: ReadinessReporter | None = None,
) -> None:
    """Judge and deliver MQTT batches until ``stop`` is set; raise only on fatal errors.

    ``readiness`` (optional) gets ``broker_connected`` False while output
    delivery is being retried, as the Kafka loop reports it.
    """
    while not stop.is_set():
        records = await source.next_batch(POLL_S)
        if not records:
            continue
        result = pipeline.judge(records, transport="mqtt")
        await deliver_with_retry(pipeline, result, readiness)
        await source.ack(records)
    log.info("mqtt_loop_stopped")


async def deliver_with_retry(
    pipeline: Pipeline, result: BatchResult, readiness: ReadinessReporter | None = None
) -> None:
    """Write a batch's outputs, backing off on a retriable SinkError until they are written."""
    delay = RETRY_INITIAL_S
    while True:
        try:
            await pipeline.deliver(result)
        except SinkError as exc:
            if not exc.retriable:
                raise
            if readiness is not None:
                readiness.set("broker_connected", False)
            log.warning("delivery_retry", transport="mqtt", error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
            continue
        if readiness is not None:
            readiness.set("broker_connected", True)
        return

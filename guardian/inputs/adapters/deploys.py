"""CDEvents on topics of the CD tools' own, forwarded to the deploy topic as v1 deploy events.

Argo CD, Keptn or Spinnaker may publish CDEvents on a topic they own and
key however they like. ``DeployBridge`` (a ``TopicBridge`` with its own
group, ``<group_id>-cdevents``) reads such topics and writes each deploy
event to the deploy topic as v1, keyed by its service, exactly as the
webhook does, so the replica that owns the service judges it. Each record
is read as the deploy topic reads its own (``decode_record``: v1, or a
CDEvent in binary, structured or bare form). What it forwards and drops:

- ``service.deployed``/``upgraded``/``rolledback`` and v1 deploy and check
  events: forwarded (a redelivered CDEvent keeps its deploy id);
- other CloudEvents and CDEvents types: skipped, counted as ``unused_type``
  (a CD tool's topic carries many), no dead letter;
- anything malformed, and v1 metric events (they belong on the metric
  topic): one dead letter each, with the reason.

The deploy topic itself is read by the judging consumer and is never
bridged (it would be forwarded to itself).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from aiokafka import ConsumerRecord

from guardian.config.settings import Settings
from guardian.errors import ConfigError, DecodeError
from guardian.inputs.adapters.bridge import BridgeBatch, TopicBridge
from guardian.inputs.records import EventSink, OutRecord
from guardian.metrics import GuardianMetrics
from guardian.wire.cdevents import UnusedEventError, decode_record
from guardian.wire.events import MetricEvent, encode_event, event_key


class DeployRecords:
    """Records of a CD tool's topic into v1 deploy and check events for the deploy topic."""

    input = "cdevents"
    state = None

    def __init__(self, deploy_topic: str) -> None:
        self._topic = deploy_topic

    def convert(self, message: ConsumerRecord, batch: BridgeBatch) -> str | None:
        """Forward one record's event, skip an unused type, or say why it is dead-lettered."""
        try:
            event = decode_record(message.value or b"", message.headers or ())
        except UnusedEventError:
            batch.skipped["unused_type"] += 1
            return None
        except DecodeError as exc:
            batch.skipped["undecodable"] += 1
            return exc.reason
        if isinstance(event, MetricEvent):
            batch.skipped["metric_event"] += 1
            return "a metric event on a deploy events topic: write it to the metric topic"
        batch.records.append(OutRecord(self._topic, event_key(event), encode_event(event)))
        batch.events += 1
        return None


class DeployBridge(TopicBridge):
    """The bridge of the CD tools' topics: CDEvents in, v1 deploy events on the deploy topic."""

    def __init__(
        self,
        settings: Settings,
        bootstrap_servers: str,
        topics: Sequence[str],
        writer: EventSink,
        metrics: GuardianMetrics,
        *,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        if settings.deploy_topic in topics:
            raise ConfigError(f"{settings.deploy_topic} is the deploy topic itself: not bridged")
        super().__init__(
            settings,
            bootstrap_servers,
            topics,
            DeployRecords(settings.deploy_topic),
            writer,
            metrics,
            clock_ms=clock_ms,
        )

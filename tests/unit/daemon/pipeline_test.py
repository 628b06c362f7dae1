"""The pipeline: decode, decide, write, and only then report offsets to commit.

The engine and the sink are fakes at their Protocol boundaries; the real
ones are exercised by the integration tests.
"""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import orjson
import pytest

from guardian.daemon.pipeline import Pipeline
from guardian.daemon.state import StateKeeper, partition_of
from guardian.engine import Engine, load_rules
from guardian.engine.decision import Decision
from guardian.errors import SinkError
from guardian.kafka.source import RawRecord
from guardian.metrics import GuardianMetrics
from guardian.wire.events import InputEvent, MetricEvent
from tests.unit.actions.commands_test import _decision

TOPICS = {
    "command": "cmd",
    "audit": "audit",
    "notification": "notify",
    "dlq": "dlq",
    "state": "state",
}
NOW_MS = 1795478460000
RULES = Path(__file__).resolve().parents[3] / "rules"


class FakeEngine:
    """Decides a rollback on any metric with errors, and records what it saw."""

    def __init__(self) -> None:
        self.seen: list[InputEvent] = []
        self.advanced: list[int] = []  # each new newest event time
        self.idle: list[int] = []

    def feed(self, event: InputEvent) -> list[Decision]:
        self.seen.append(event)
        if not self.advanced or event.timestamp > self.advanced[-1]:
            self.advanced.append(event.timestamp)
        if isinstance(event, MetricEvent) and event.values.get("errors"):
            return [dataclasses.replace(_decision(), at_ms=event.timestamp)]
        return []

    def advance_idle(self, now_ms: int) -> list[Decision]:
        self.idle.append(now_ms)
        return []


class FakeSink:
    """Keeps what was sent; fails ``flush`` while ``down`` is set."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []
        self.flushed = 0
        self.down = False

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.sent.append((topic, value, key))

    async def flush(self) -> None:
        if self.down:
            raise SinkError("broker away")
        self.flushed += 1


def _metric(offset: int, errors: int, ts: int = NOW_MS - 1000) -> RawRecord:
    value = orjson.dumps(
        {
            "kind": "metric",
            "service": "checkout",
            "environment": "production",
            "timestamp": ts,
            "values": {"requests": 100, "errors": errors},
        }
    )
    return RawRecord("metric.events", 0, offset, b"checkout", value, ts)


def _pipeline(engine: FakeEngine, sink: FakeSink) -> tuple[Pipeline, GuardianMetrics]:
    metrics = GuardianMetrics()
    pipeline = Pipeline(engine, sink, TOPICS, metrics, wall_clock_ms=lambda: NOW_MS)  # type: ignore[arg-type]
    return pipeline, metrics


async def test_batch_outputs_are_flushed_and_offsets_returned() -> None:
    """A decided batch writes command, audit and notification, then reports next offsets."""
    engine, sink = FakeEngine(), FakeSink()
    pipeline, metrics = _pipeline(engine, sink)
    result = await pipeline.handle_batch([_metric(4, 0), _metric(5, 9)])
    assert [topic for topic, _, _ in sink.sent] == ["cmd", "audit", "notify"]
    assert sink.flushed == 1
    assert result.next_offsets == {("metric.events", 0): 6}
    assert result.commands == 1
    assert engine.advanced == [NOW_MS - 1000]
    assert (
        metrics.registry.get_sample_value(
            "guardian_events_consumed_total", {"topic": "metric.events"}
        )
        == 2
    )
    assert (
        metrics.registry.get_sample_value(
            "guardian_rollback_commands_total", {"trigger": "automatic"}
        )
        == 1
    )


async def test_garbage_goes_to_the_dead_letter_topic_and_the_batch_goes_on() -> None:
    """An undecodable record becomes a dead letter with its reason and bytes; others are judged."""
    engine, sink = FakeEngine(), FakeSink()
    pipeline, metrics = _pipeline(engine, sink)
    garbage = RawRecord("metric.events", 1, 17, b"k", b"\xffnot json", NOW_MS)
    result = await pipeline.handle_batch([garbage, _metric(3, 0)])
    assert len(engine.seen) == 1
    topic, value, _ = sink.sent[0]
    assert topic == "dlq"
    letter = orjson.loads(value)
    assert letter["source"] == {
        "transport": "kafka",
        "topic": "metric.events",
        "partition": 1,
        "offset": 17,
    }
    assert "not valid JSON" in letter["reason"]
    assert base64.b64decode(letter["original_b64"]) == b"\xffnot json"
    assert result.dead_letters == 1
    assert result.next_offsets == {("metric.events", 1): 18, ("metric.events", 0): 4}
    assert metrics.registry.get_sample_value("guardian_dead_letters_total") == 1


async def test_events_from_the_far_future_are_dead_lettered() -> None:
    """An event stamped beyond the allowed clock skew is refused, not allowed to move time."""
    engine, sink = FakeEngine(), FakeSink()
    pipeline, _ = _pipeline(engine, sink)
    result = await pipeline.handle_batch([_metric(0, 0, ts=NOW_MS + 3_600_000)])
    assert engine.seen == []
    assert result.dead_letters == 1
    assert "ahead of the guardian's clock" in orjson.loads(sink.sent[0][1])["reason"]


async def test_failed_delivery_raises_and_can_be_retried_without_judging_again() -> None:
    """If the broker does not acknowledge, deliver raises; retrying re-sends the same outputs."""
    engine, sink = FakeEngine(), FakeSink()
    pipeline, _ = _pipeline(engine, sink)
    result = pipeline.judge([_metric(0, 5)])
    sink.down = True
    with pytest.raises(SinkError):
        await pipeline.deliver(result)
    sink.down = False
    await pipeline.deliver(result)
    assert len(engine.seen) == 1
    first, second = sink.sent[:3], sink.sent[3:]
    assert first == second


class TimerEngine(FakeEngine):
    """Escalates once idle time passes a deadline."""

    def advance_idle(self, now_ms: int) -> list[Decision]:
        self.idle.append(now_ms)
        if now_ms >= NOW_MS + 600_000:
            return [dataclasses.replace(_decision(), action="escalate", at_ms=now_ms)]
        return []


async def test_idle_time_lets_escalations_fire() -> None:
    """With no records arriving, escalations are due by the wall clock from the newest event."""
    engine, sink = TimerEngine(), FakeSink()
    pipeline, _ = _pipeline(engine, sink)
    assert pipeline.idle(5_000).outputs == []  # nothing seen yet: no notion of event time
    await pipeline.handle_batch([_metric(0, 0, ts=NOW_MS)])
    assert pipeline.idle(60_000).decisions == []
    result = pipeline.idle(600_000)
    assert [d.action for d in result.decisions] == ["escalate"]
    await pipeline.deliver(result)
    assert [topic for topic, _, _ in sink.sent] == ["audit", "notify"]


async def test_chunked_judging_equals_judging_at_once() -> None:
    """Judging a batch in slices gives the same outputs and offsets as judging it whole."""
    records = [_metric(i, i % 3, ts=NOW_MS - 10_000 + i) for i in range(23)]
    whole, _ = _pipeline(FakeEngine(), FakeSink())
    sliced, _ = _pipeline(FakeEngine(), FakeSink())
    one = whole.judge(records)
    many = await sliced.judge_in_chunks(records, chunk=5)
    assert many.next_offsets == one.next_offsets
    assert many.commands == one.commands == 15
    assert [o.role for o in many.outputs] == [o.role for o in one.outputs]
    assert many.consumed == one.consumed


async def _keeper_owning(partitions: set[int]) -> StateKeeper:
    keeper = StateKeeper(Engine(load_rules(RULES)))

    async def nothing_stored(_keep: object) -> dict[bytes, bytes]:
        return {}

    await keeper.rebalance(partitions, 4, nothing_stored)
    return keeper


async def test_mqtt_events_of_services_owned_elsewhere_go_on_to_kafka() -> None:
    """MQTT has no partitions: another replica's service is forwarded, an owned one judged."""
    home = partition_of("checkout", 4)
    engine, sink = FakeEngine(), FakeSink()
    metrics = GuardianMetrics()
    topics = {**TOPICS, "deploy": "deploy.events", "metric": "metric.events"}
    elsewhere = await _keeper_owning({0, 1, 2, 3} - {home})
    pipeline = Pipeline(
        engine,
        sink,
        topics,  # type: ignore[arg-type]
        metrics,
        wall_clock_ms=lambda: NOW_MS,
        state=elsewhere,
    )
    record = _metric(0, 9)
    await pipeline.handle_batch([record], transport="mqtt")
    assert engine.seen == []
    assert sink.sent == [("metric.events", record.value, b"checkout")]
    assert metrics.registry.get_sample_value("guardian_events_forwarded_total") == 1

    await pipeline.handle_batch([record], transport="kafka")  # Kafka records are always judged
    assert len(engine.seen) == 1

    sink.sent.clear()
    owner = await _keeper_owning({home})
    pipeline = Pipeline(engine, sink, topics, metrics, wall_clock_ms=lambda: NOW_MS, state=owner)  # type: ignore[arg-type]
    await pipeline.handle_batch([record], transport="mqtt")
    assert len(engine.seen) == 2
    assert "metric.events" not in [topic for topic, _, _ in sink.sent]


async def test_mqtt_events_before_any_assignment_are_forwarded() -> None:
    """Until this replica owns partitions, it judges no MQTT event itself."""
    keeper = StateKeeper(Engine(load_rules(RULES)))
    assert not keeper.owns("checkout")


def _deploy_record(ts: int) -> RawRecord:
    started = orjson.dumps(
        {
            "kind": "deploy",
            "type": "started",
            "deploy_id": "d-1",
            "service": "checkout",
            "environment": "production",
            "version": "2",
            "timestamp": ts,
        }
    )
    return RawRecord("deploy.events", 0, 0, b"checkout", started, ts)


@pytest.mark.parametrize("chunk", [500, 2])
async def test_a_batch_is_judged_in_event_time_order(chunk: int) -> None:
    """A backlog batch may bring a deploy's metrics before the deploy: the deploy goes first.

    Also when the batch is judged in chunks (the deploy would land in the last one).
    """
    engine, sink = FakeEngine(), FakeSink()
    pipeline, _ = _pipeline(engine, sink)
    deploy = _deploy_record(NOW_MS - 5000)
    metrics = [_metric(i, 0, ts=NOW_MS - 4000 + i) for i in range(3)]
    result = await pipeline.judge_in_chunks([*metrics, deploy], chunk=chunk)
    assert [type(e).__name__ for e in engine.seen] == [
        "DeployEvent",
        "MetricEvent",
        "MetricEvent",
        "MetricEvent",
    ]
    assert [e.timestamp for e in engine.seen][1:] == [NOW_MS - 4000, NOW_MS - 3999, NOW_MS - 3998]
    assert result.next_offsets == {("metric.events", 0): 3, ("deploy.events", 0): 1}

"""The daemon's pipeline decides exactly what ``guardian replay`` decides on the same recording.

Whatever the batch sizes, however late the deploy topic is fetched behind the
metric topic, and with idle ticks between batches: the same rules fire at
the same event times with the same reason and evidence. The engine and
pipeline are real; only the sink is a fake.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from guardian.actions.outputs import Role
from guardian.cli.replay_cmd import run_replay
from guardian.daemon.pipeline import Pipeline
from guardian.demo.scenario import scenario
from guardian.engine import Engine, RuleSet, load_rules, parse_rules
from guardian.kafka.source import RawRecord
from guardian.metrics import GuardianMetrics
from tests.support.events import T0, deploy, traffic
from tests.support.scenarios import mixed_recording

RULES = Path(__file__).resolve().parents[3] / "rules"
TOPICS: dict[Role, str] = {
    "command": "cmd",
    "audit": "audit",
    "notification": "notify",
    "dlq": "dlq",
    "state": "s",
}
# A short bake, so that an idle tick can outlast it.
SHORT_BAKE = """
settings: {bake_time: 1m, rollback_timeout: 1h}
rules:
  - name: errors
    metric: error_rate
    window: 10s
    condition: "> 5%"
    for: 10s
    min_samples: 2
    min_volume: {metric: requests, at_least: 50}
    action: rollback
"""

Schedule = Callable[[list[RawRecord], random.Random], Iterator[tuple[list[RawRecord], int]]]


class _Sink:
    """Accepts every record (the pipeline's RecordSink protocol)."""

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        return None

    async def flush(self) -> None:
        return None


def _demo() -> list[dict[str, Any]]:
    return [event for tick in scenario(T0) for event in tick.events]


def _mixed() -> list[dict[str, Any]]:
    deploys, metrics = mixed_recording()
    # A live recording's order: by event time, lifecycle events first within an instant.
    return sorted([*deploys, *metrics], key=lambda e: (e["timestamp"], e["kind"] == "metric"))


def _bake_outlasted() -> list[dict[str, Any]]:
    events = [
        deploy(at_ms=T0, strategy="rolling"),
        *traffic(seconds=60, requests=20),
        deploy("completed", at_ms=T0 + 60_000, strategy="rolling"),
        *traffic(start_ms=T0 + 60_000, seconds=40, requests=20),
        *traffic(start_ms=T0 + 100_000, seconds=60, requests=20, error_rate=0.25),
    ]
    return sorted(events, key=lambda e: (e["timestamp"], e["kind"] == "metric"))


def _records(events: list[dict[str, Any]]) -> list[RawRecord]:
    offsets = {"deploy.events": 0, "metric.events": 0}
    out = []
    for event in events:
        topic = "metric.events" if event["kind"] == "metric" else "deploy.events"
        out.append(
            RawRecord(
                topic,
                0,
                offsets[topic],
                event["service"].encode(),
                orjson.dumps(event),
                int(event["timestamp"]),
            )
        )
        offsets[topic] += 1
    return out


def _replayed(rules: RuleSet, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    lines = [orjson.dumps(event) for event in events]
    return [d.to_dict() for d in run_replay(Engine(rules), lines, lambda *_: None)]


def whole(records: list[RawRecord], rng: random.Random) -> Iterator[tuple[list[RawRecord], int]]:
    """Everything in one fetch."""
    yield records, 0


def singles(records: list[RawRecord], rng: random.Random) -> Iterator[tuple[list[RawRecord], int]]:
    """One record per fetch, an idle second now and then."""
    for i, record in enumerate(records):
        yield [record], 1_000 if i % 7 == 0 else 0


def _lagging(records: list[RawRecord], rng: random.Random, most: int) -> list[RawRecord]:
    """Arrival order when the deploy topic is fetched up to ``most`` records behind metrics."""
    arrival: list[tuple[float, RawRecord]] = []
    metric_count = 0
    for record in records:
        if record.topic == "metric.events":
            metric_count += 1
            arrival.append((metric_count, record))
        else:
            arrival.append((metric_count + rng.randint(2, most) + 0.5, record))
    arrival.sort(key=lambda pair: pair[0])
    return [record for _, record in arrival]


def deploys_fetched_late(
    records: list[RawRecord], rng: random.Random
) -> Iterator[tuple[list[RawRecord], int]]:
    """The deploy topic lags the metric topic; batches of any size; idle ticks of any length."""
    ordered = _lagging(records, rng, 6)
    start = 0
    while start < len(ordered):
        size = rng.choice([1, 2, 3, 17, 64, 250, 1200])
        yield ordered[start : start + size], rng.choice([0, 0, 0, 1_500, 20_000, 300_000])
        start += size


def deploys_a_fetch_behind(
    records: list[RawRecord], rng: random.Random
) -> Iterator[tuple[list[RawRecord], int]]:
    """Tiny batches: a deploy event always lands in a later batch than its first metrics."""
    ordered = _lagging(records, rng, 6)
    start = 0
    while start < len(ordered):
        size = rng.randint(1, 2)
        yield ordered[start : start + size], 0
        start += size


def deploys_fetched_early(
    records: list[RawRecord], rng: random.Random
) -> Iterator[tuple[list[RawRecord], int]]:
    """The metric topic lags: a deploy is judged before older metrics of its service."""
    arrival: list[tuple[float, RawRecord]] = []
    metric_count = 0
    for record in records:
        if record.topic == "metric.events":
            metric_count += 1
            arrival.append((metric_count, record))
        else:
            arrival.append((max(0, metric_count - rng.randint(2, 40)) + 0.5, record))
    arrival.sort(key=lambda pair: pair[0])
    ordered = [record for _, record in arrival]
    start = 0
    while start < len(ordered):
        size = rng.randint(1, 3)
        yield ordered[start : start + size], 0
        start += size


def pause_after_lifecycle(
    records: list[RawRecord], rng: random.Random
) -> Iterator[tuple[list[RawRecord], int]]:
    """After each batch with a deploy or check event, no input for five minutes."""
    for start in range(0, len(records), 25):
        batch = records[start : start + 25]
        pause = any(r.topic == "deploy.events" for r in batch)
        yield batch, 300_000 if pause else 0


async def _daemon(
    rules: RuleSet, events: list[dict[str, Any]], schedule: Schedule, seed: int
) -> list[dict[str, Any]]:
    records = _records(events)
    end_ms = max(r.timestamp_ms for r in records) + 1_000
    pipeline = Pipeline(
        Engine(rules), _Sink(), TOPICS, GuardianMetrics(), wall_clock_ms=lambda: end_ms
    )
    decisions = []
    for batch, idle_ms in schedule(records, random.Random(seed)):
        result = await pipeline.judge_in_chunks(batch, chunk=97)
        decisions += result.decisions
        if idle_ms:
            decisions += pipeline.idle(idle_ms).decisions
    return [d.to_dict() for d in decisions]


@pytest.mark.parametrize(
    "schedule",
    [
        whole,
        singles,
        deploys_fetched_late,
        deploys_a_fetch_behind,
        deploys_fetched_early,
        pause_after_lifecycle,
    ],
)
@pytest.mark.parametrize(
    ("recording", "pack"),
    [(_demo, None), (_mixed, None), (_bake_outlasted, SHORT_BAKE)],
)
async def test_the_pipeline_decides_what_replay_decides(
    recording: Callable[[], list[dict[str, Any]]], pack: str | None, schedule: Schedule
) -> None:
    """Batches of any size, a lagging deploy topic and idle ticks change no decision."""
    rules = parse_rules(pack, "pack.yaml") if pack else load_rules(RULES)
    events = recording()
    expected = _replayed(rules, events)
    assert any(d["action"] == "rollback" for d in expected)
    for seed in range(3):
        assert await _daemon(rules, events, schedule, seed) == expected


def test_the_demo_rollback_is_decided_by_the_comparison_with_stable() -> None:
    """The demo's bad canary (7-9% errors against stable's 0.3%) is rolled back on its first
    bad event by the statistical comparison, with the evidence an operator reads."""
    (rollback,) = [d for d in _replayed(load_rules(RULES), _demo()) if d["action"] == "rollback"]
    assert rollback["rule"] == "canary-errors-stat"
    statistics = rollback["evidence"]["statistics"]
    assert statistics["verdict"] == "worse"
    assert statistics["e_value_worse"] >= 100  # 1 / (1 - 0.99)
    assert statistics["canary"] == {"requests": 50.0, "errors": 4.0}


@pytest.mark.parametrize("recording", [_demo, _mixed])
def test_the_order_of_one_instants_metric_events_changes_no_decision(
    recording: Callable[[], list[dict[str, Any]]],
) -> None:
    """Canary and stable events of the same instant may come in either order (a late deploy's
    catch-up takes them series by series): the decisions, evidence included, stay the same."""
    rules = load_rules(RULES)
    events = recording()
    reversed_ties: list[dict[str, Any]] = []
    for (_, is_metric), group in itertools.groupby(
        events, key=lambda e: (e["timestamp"], e["kind"] == "metric")
    ):
        instant = list(group)
        reversed_ties += instant[::-1] if is_metric else instant
    assert reversed_ties != events
    assert _replayed(rules, reversed_ties) == _replayed(rules, events)

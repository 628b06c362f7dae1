"""State keeping: which snapshots are written, and which are restored or dropped on a rebalance."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from guardian.daemon import state as state_module
from guardian.daemon.state import (
    StateKeeper,
    owned_partitions,
    parse_state_key,
    partition_of,
    state_key,
)
from guardian.engine import Engine, load_rules
from guardian.logs import configure_logging
from tests.unit.engine.builders import deploy, metric

RULES = Path(__file__).resolve().parents[3] / "rules"


def _engine_with_deploys(services: list[str]) -> Engine:
    engine = Engine(load_rules(RULES))
    for index, service in enumerate(services):
        engine.process(deploy(0, deploy_id=f"d-{index}", service=service))
        engine.process(metric(1, service=service, requests=100, errors=0))
    return engine


def test_partition_matches_kafkas_default_partitioner() -> None:
    """A service maps to the partition Kafka's murmur2 partitioner gives its key."""
    assert partition_of("checkout", 4) == partition_of("checkout", 4)
    assert {partition_of(f"svc-{i}", 4) for i in range(50)} == {0, 1, 2, 3}


def test_state_keys_round_trip_and_foreign_keys_are_ignored() -> None:
    """State keys carry service and environment; other writers' keys are not ours."""
    assert parse_state_key(state_key("checkout", "production")) == ("checkout", "production")
    assert parse_state_key(b"request:123") is None
    assert parse_state_key(b"notifier|abc") is None


def test_touched_services_get_a_snapshot_record() -> None:
    """Each touched service known to the engine yields one state record keyed by it."""
    keeper = StateKeeper(_engine_with_deploys(["checkout"]))
    records = keeper.outputs_for([("checkout", "production"), ("unknown", "production")])
    assert [(r.role, r.key) for r in records] == [("state", state_key("checkout", "production"))]
    assert orjson.loads(records[0].value)["service"] == "checkout"


def test_periodic_snapshots_cover_live_deploys_once_per_interval() -> None:
    """Periodic snapshots are written for services with a live deploy, then wait an interval."""
    keeper = StateKeeper(_engine_with_deploys(["a", "b"]))
    assert keeper.periodic_outputs() == []  # the interval has not passed yet
    forced = keeper.periodic_outputs(force=True)
    assert sorted(r.key for r in forced) == [
        state_key("a", "production"),
        state_key("b", "production"),
    ]
    assert keeper.periodic_outputs() == []


def test_a_handover_snapshots_the_live_services_that_move_away() -> None:
    """Partitions given up (or all, at a drain): their live services' state is written first."""
    services = [f"svc-{i}" for i in range(12)]
    keeper = StateKeeper(_engine_with_deploys(services))
    kept = {partition_of(services[0], 4)}
    leaving = {state_key(s, "production") for s in services if partition_of(s, 4) not in kept}
    assert leaving
    assert {r.key for r in keeper.handover_outputs(kept, 4)} == leaving
    everything = {state_key(s, "production") for s in services}
    assert {r.key for r in keeper.handover_outputs(set(), 4)} == everything


def test_oversized_snapshots_drop_their_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """A snapshot over the record limit is written without its sliding windows."""
    monkeypatch.setattr(state_module, "MAX_SNAPSHOT_BYTES", 10)
    keeper = StateKeeper(_engine_with_deploys(["checkout"]))
    (record,) = keeper.outputs_for([("checkout", "production")])
    assert orjson.loads(record.value)["series"] == []


async def test_rebalance_restores_gained_and_drops_lost_services() -> None:
    """Snapshots of services on newly owned partitions are restored; moved-away ones dropped."""
    services = [f"svc-{i}" for i in range(12)]
    source = _engine_with_deploys(services)
    saved = {
        r.key: r.value for r in StateKeeper(source).outputs_for((s, "production") for s in services)
    }
    saved[b"request:1"] = b"{}"
    saved[state_key("broken", "production")] = b'{"v": 999}'

    engine = Engine(load_rules(RULES))
    keeper = StateKeeper(engine)

    offered: list[bytes] = []

    async def load(keep: Callable[[bytes], bool]) -> dict[bytes, bytes]:
        offered.extend(key for key in saved if keep(key))
        return {key: value for key, value in saved.items() if keep(key)}

    await keeper.rebalance({0, 1}, 4, load)
    assert b"request:1" not in offered  # only the gained partitions' snapshots are held
    owned = {s for s in services if partition_of(s, 4) in {0, 1}}
    assert {s for s in services if engine.deploy_of(s, "production")} == owned

    await keeper.rebalance({1}, 4, load)
    kept = {s for s in services if partition_of(s, 4) == 1}
    assert {s for s in services if engine.deploy_of(s, "production")} == kept
    assert engine.stats.active_deploys == len(kept)


def test_forgotten_services_do_not_escalate() -> None:
    """A service handed to another replica leaves no timer behind to escalate here."""
    engine = Engine(load_rules(RULES))
    engine.process(deploy(0, deploy_id="d-x"))
    decisions = []
    for second in range(1, 120):
        decisions += engine.process(metric(second, requests=50, errors=10))
    assert any(d.action == "rollback" for d in decisions)
    assert engine.forget_services([("checkout", "production")]) == 1
    assert engine.forget_services([("checkout", "production")]) == 0  # twice is harmless
    assert engine.held_services() == []
    assert engine.advance(10**13) == []


def test_a_replica_owns_the_partitions_it_holds_on_every_input_topic(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Partition N is owned only with N of both topics; a half-held one is logged."""
    configure_logging("info", "json")
    topics = ("deploys", "metrics")
    whole = {("deploys", 0), ("metrics", 0), ("deploys", 2), ("metrics", 2)}
    assert owned_partitions(whole, topics) == {0, 2}
    assert "assignment_not_copartitioned" not in capsys.readouterr().err
    assert owned_partitions({*whole, ("deploys", 1), ("other", 1)}, topics) == {0, 2}
    assert "assignment_not_copartitioned" in capsys.readouterr().err
    assert owned_partitions(set(), topics) == set()

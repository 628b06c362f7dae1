"""Snapshots: a restarted engine restored from snapshots decides as if never stopped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from guardian.engine import Engine, SnapshotError, decode_snapshot, encode_snapshot
from guardian.engine.snapshot import (
    REBUILT,
    Progress,
    SeriesSnapshot,
    ServiceSnapshot,
)
from guardian.engine.state import Binding, Series, ServiceState
from guardian.wire.events import InputEvent
from tests.unit.engine.builders import at, deploy, metric, rules, run

PACK = """
settings: {bake_time: 10m}
rules:
  - name: latency
    metric: latency_ms
    window: 10s
    condition: {increase: ">= 100%", baseline: pre_deploy, baseline_window: 5m}
    for: 10s
    min_samples: 2
    action: rollback
"""
# Written by the previous release (snapshot version 2) from ``_ratio_events``.
LEGACY = json.loads((Path(__file__).parent / "data" / "snapshots_v2.json").read_text())


def _events() -> list[InputEvent]:
    before = [metric(t, latency_ms=100) for t in range(-300, 0, 5)]
    after = [metric(t, latency_ms=300) for t in range(60)]
    return [*before, deploy(0), *after]


def _ratio_events() -> list[InputEvent]:
    before = [metric(t, requests=100, errors=1, latency_ms=100) for t in range(-300, 0, 5)]
    after = [metric(t, requests=100, errors=9, latency_ms=120) for t in range(60)]
    return [*before, deploy(0), *after]


def _through_bytes(engine: Engine, service: str = "checkout") -> ServiceSnapshot:
    snapshot = engine.snapshot(service, "production")
    assert snapshot is not None
    return decode_snapshot(encode_snapshot(snapshot))


def _key(decisions: list[Any]) -> list[tuple[str, str, int, str, dict[str, Any]]]:
    return [(d.rule, d.action, d.at_ms, d.reason, d.evidence) for d in decisions]


@pytest.mark.parametrize("cut", [40, 70, 80])
def test_restore_continues_where_the_snapshot_left_off(cut: int) -> None:
    """Stopping at any point and restoring from an encoded snapshot changes no decision."""
    events = _events()
    whole = run(Engine(rules(PACK)), events)
    whole += Engine(rules(PACK)).advance(0)
    first = Engine(rules(PACK))
    part = run(first, events[:cut])
    second = Engine(rules(PACK))
    second.restore(_through_bytes(first))
    part += run(second, events[cut:])
    part += second.advance(at(3600))
    assert _key(part)[:1] == _key(whole)[:1]
    assert second.stats.tracked_series == 1


def test_restore_keeps_the_rollback_and_escalates() -> None:
    """A restored deploy that was already rolled back gets no second rollback, and escalates."""
    first = Engine(rules(PACK))
    decisions = run(first, _events())
    assert [d.action for d in decisions] == ["rollback"]
    second = Engine(rules(PACK))
    second.restore(_through_bytes(first))
    assert run(second, [metric(t, latency_ms=300) for t in range(60, 90)]) == []
    assert [d.action for d in second.advance(at(3600))] == ["escalate"]
    explanation = second.explain("d1")
    assert explanation is not None
    assert explanation["rollback"] == decisions[0].to_dict()


def test_snapshot_of_unknown_service_and_unreadable_records() -> None:
    """Unknown services have no snapshot; other versions and non-snapshots are refused clearly."""
    engine = Engine(rules(PACK))
    assert engine.snapshot("x", "y") is None
    with pytest.raises(SnapshotError, match=r"unsupported engine snapshot version 99 \(this"):
        decode_snapshot(b'{"v": 99}')
    with pytest.raises(SnapshotError, match="version None"):
        decode_snapshot(b'{"service": "x"}')
    with pytest.raises(SnapshotError, match="not an engine snapshot"):
        decode_snapshot(b'{"v": 3, "service": 1}')
    with pytest.raises(SnapshotError, match="not an engine snapshot"):
        decode_snapshot(b"\x00garbage")


def test_restore_a_baking_deploy() -> None:
    """A baking deploy comes back baking and completes after the bake time."""
    first = Engine(rules(PACK))
    run(first, [deploy(0), deploy(10, "completed"), metric(11, latency_ms=1)])
    second = Engine(rules(PACK))
    second.restore(_through_bytes(first))
    second.restore(_through_bytes(first))
    assert second.stats.tracked_series == 1
    second.advance(at(10 + 600))
    info = second.deploy_of("checkout", "production")
    assert info is not None
    assert info.status == "completed"


def test_restoring_over_a_service_forgets_what_hung_off_the_old_state() -> None:
    """A restore replaces the service whole: the old deploy, its timers and series go."""
    engine = Engine(rules(PACK))
    run(engine, _events())  # d1 rolled back, its escalation pending
    other = Engine(rules(PACK))
    run(other, [deploy(50, deploy_id="d2"), metric(51, region="eu-west", latency_ms=1)])
    engine.restore(_through_bytes(other))
    assert engine.explain("d1") is None
    assert engine.advance(at(3600)) == []  # no escalation of the replaced d1
    assert engine.stats.tracked_series == 1
    assert engine.stats.active_deploys == 1


def _legacy(name: str, version: int = 2) -> bytes:
    data = json.loads(json.dumps(LEGACY[name]))
    if version == 1:  # version 1 kept a denominator column for every measure
        data["v"] = 1
        for store in data["baselines"].values():
            width, ratios = len(store["measures"]), len(store["dens"]) // len(store["starts"])
            assert ratios == 1
            assert width == 2
            store["dens"] = [x for den in store["dens"] for x in (den, 0.0)]
    return json.dumps(data).encode()


@pytest.mark.parametrize("version", [1, 2])
def test_a_snapshot_of_an_older_version_restores(version: int) -> None:
    """A version 1 or 2 snapshot left on the state topic by the previous release is read."""
    pack = rules(LEGACY["rules"])
    events = _ratio_events()
    whole = run(Engine(pack), events)
    engine = Engine(pack)
    engine.restore(decode_snapshot(_legacy("mid", version)))
    assert _key(run(engine, events[66:])) == _key(whole)
    assert _key(whole)[0][0] == "errors-up"


def test_an_older_rollback_restores_as_a_rollback() -> None:
    """A version 2 deploy that was rolled back gets no second rollback and still escalates."""
    engine = Engine(rules(LEGACY["rules"]))
    engine.restore(decode_snapshot(_legacy("rolled_back")))
    assert run(engine, [metric(t, requests=100, errors=9) for t in range(60, 90)]) == []
    (escalation,) = engine.advance(at(3600))
    assert (escalation.action, escalation.rule, escalation.deploy_id) == (
        "escalate",
        "errors-up",
        "d1",
    )


def test_the_snapshot_keeps_what_request_log_reads_of_a_deploy() -> None:
    """Other replicas read the deploy's fields by name from the state record's ``deploy``."""
    engine = Engine(rules(PACK))
    run(engine, [deploy(0, strategy="canary")])
    snapshot = engine.snapshot("checkout", "production")
    assert snapshot is not None
    saved = json.loads(encode_snapshot(snapshot))["deploy"]
    assert {
        "deploy_id",
        "version",
        "previous_version",
        "strategy",
        "component",
        "regions",
        "reached",
        "started_at_ms",
        "status",
        "completed_at_ms",
    } <= set(saved)


@pytest.mark.parametrize(
    ("state", "saved_as"),
    [(ServiceState, ServiceSnapshot), (Series, SeriesSnapshot), (Binding, Progress)],
)
def test_every_slot_of_the_state_is_saved_or_rebuilt_on_purpose(
    state: type, saved_as: type[msgspec.Struct]
) -> None:
    """A new field of the engine state must be saved or listed in REBUILT with a reason."""
    slots = set(vars(state)["__slots__"])
    saved = set(saved_as.__struct_fields__)
    rebuilt = set(REBUILT[state])
    assert slots - saved - rebuilt == set(), "neither saved nor rebuilt"
    assert rebuilt <= slots, "listed but gone"
    assert not rebuilt & saved, "both saved and rebuilt"

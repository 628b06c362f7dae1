"""``compare`` tests survive a takeover and a hot reload: they decide as if never stopped."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from guardian.daemon.state import StateKeeper
from guardian.engine import Engine, decode_snapshot, encode_snapshot
from guardian.engine.decision import Decision
from guardian.wire.events import InputEvent, decode_event
from tests.support.canary_recordings import MISSES, Recording, healthy_twin, miss
from tests.unit.engine.builders import rules, run
from tests.unit.engine.compare_test import COMPARE

KEY = ("checkout", "production")


def _decoded(recording: Recording) -> list[InputEvent]:
    events = sorted([recording.deploy, *recording.events], key=lambda e: e["timestamp"])
    return [decode_event(json.dumps(e)) for e in events]


def _key(decisions: list[Decision]) -> list[tuple[str, str, int, str, dict[str, Any]]]:
    return [(d.rule, d.action, d.at_ms, d.reason, d.evidence) for d in decisions]


def _taken_over(engine: Engine, text: str = COMPARE) -> Engine:
    """A fresh engine restored from ``engine``'s state through the daemon's StateKeeper."""
    records = StateKeeper(engine).outputs_for([KEY])
    successor = Engine(rules(text))
    restored = StateKeeper(successor).restore({r.key: r.value for r in records}, {0}, 1)
    assert restored == 1
    return successor


def _tests(engine: Engine) -> dict[tuple[str, str], dict[str, Any]]:
    st = engine.inspect(*KEY)
    assert st is not None
    return {key: c.evidence() for key, c in st.comparisons.items()}


def _first_update(events: list[InputEvent]) -> int:
    """How many events it takes for a test to have its first update."""
    engine = Engine(rules(COMPARE))
    for i, event in enumerate(events, start=1):
        engine.feed(event)
        st = engine.inspect(*KEY)
        if st is not None and any(c.evidence()["updates"] for c in st.comparisons.values()):
            return i
    raise AssertionError("no test was ever updated")


# ``low_traffic_errors`` is decided on the test's first update: there is no midway to cut at.
MIDWAY = sorted(set(MISSES) - {"low_traffic_errors"})


@pytest.mark.parametrize("name", MIDWAY)
@pytest.mark.parametrize("cut", [0.1, 0.25, 0.5])
def test_a_takeover_midway_decides_exactly_as_the_uninterrupted_run(name: str, cut: float) -> None:
    """Snapshot midway, restore into a fresh engine, go on: same rule, time and evidence."""
    recording = miss(name, minutes=6, pre_minutes=1)
    events = _decoded(recording)
    whole = run(Engine(rules(COMPARE)), events)
    assert [d.action for d in whole] == ["rollback"]
    # Cut while the test is running: after its first update, before the rollback.
    started = _first_update(events)
    decided = next(i for i, e in enumerate(events) if e.timestamp >= whole[0].at_ms)
    half = started + int((decided - started) * cut)
    first = Engine(rules(COMPARE))
    assert run(first, events[:half]) == []
    assert any(test["updates"] > 0 for test in _tests(first).values())
    second = _taken_over(first)
    assert _tests(second) == _tests(first)
    assert _key(run(second, events[half:])) == _key(whole)


def test_a_healthy_canary_s_evidence_is_the_same_after_a_takeover() -> None:
    """A test still inconclusive (or concluded not worse) carries its e-values over unchanged."""
    events = _decoded(healthy_twin("five_x_errors", minutes=10, pre_minutes=1))
    whole = Engine(rules(COMPARE))
    assert run(whole, events) == []
    first = Engine(rules(COMPARE))
    run(first, events[: len(events) // 3])
    second = _taken_over(first)
    assert run(second, events[len(events) // 3 :]) == []
    assert _tests(second) == _tests(whole)


def test_a_snapshot_without_tests_still_loads_and_the_tests_start_afresh() -> None:
    """A snapshot written before tests were saved (no ``comparisons``) restores; tests restart."""
    recording = miss("slow_p95", minutes=10, pre_minutes=1)
    events = _decoded(recording)
    half = next(i for i, e in enumerate(events) if e.timestamp > recording.started_at_ms + 30_000)
    first = Engine(rules(COMPARE))
    assert run(first, events[:half]) == []
    snapshot = first.snapshot(*KEY)
    assert snapshot is not None
    assert snapshot.comparisons
    old = msgspec.json.decode(encode_snapshot(snapshot))
    del old["comparisons"]
    restored = Engine(rules(COMPARE))
    restored.restore(decode_snapshot(msgspec.json.encode(old)))
    decisions = run(restored, events[half:])
    assert [d.rule for d in decisions] == ["canary-p95-stat"]
    started = decisions[0].evidence["statistics"]["started_at_ms"]
    assert started > recording.started_at_ms + 30_000


def test_a_restore_under_another_hypothesis_starts_the_test_afresh() -> None:
    """Evidence saved for ``+20%`` is not taken back by a rule that asks for ``+30%``."""
    events = _decoded(miss("slow_p95", minutes=10, pre_minutes=1))
    first = Engine(rules(COMPARE))
    run(first, events[:100])
    second = _taken_over(first, COMPARE.replace("plus: +20%", "plus: +30%"))
    tests = _tests(second)
    assert tests[("canary-p95-stat", "us-east")]["updates"] == 0
    assert (
        tests[("canary-errors-stat", "us-east")] == _tests(first)[("canary-errors-stat", "us-east")]
    )


def test_a_hot_reload_keeps_unchanged_tests_and_restarts_changed_ones() -> None:
    """Reloading with only a description changed alters no decision; a changed test restarts."""
    events = _decoded(miss("slow_p95", minutes=6, pre_minutes=1))
    whole = run(Engine(rules(COMPARE)), events)
    decided = next(i for i, e in enumerate(events) if e.timestamp >= whole[0].at_ms)
    cut = decided // 2
    engine = Engine(rules(COMPARE))
    assert run(engine, events[:cut]) == []
    before = _tests(engine)
    described = COMPARE.replace("action: rollback", "description: edited\n    action: rollback")
    engine.swap_rules(rules(described))
    assert _tests(engine) == before  # same hypotheses: the evidence carries on
    assert _key(run(engine, events[cut:])) == _key(whole)

    changed = Engine(rules(COMPARE))
    run(changed, events[:cut])
    changed.swap_rules(rules(COMPARE.replace("plus: +20%", "plus: +30%")))
    tests = _tests(changed)
    assert tests[("canary-p95-stat", "us-east")]["updates"] == 0
    assert tests[("canary-errors-stat", "us-east")] == before[("canary-errors-stat", "us-east")]

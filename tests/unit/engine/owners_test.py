"""The owners of engine state keep their invariants: series count, timer order, one forget path."""

from __future__ import annotations

import random

from guardian.engine import Engine, decode_snapshot, encode_snapshot
from guardian.engine.state import Binding, DeployState, Series, ServiceState
from guardian.engine.timers import BakeEnd, Escalation, NoDataCheck, Timer, TimerQueue
from tests.unit.engine.builders import ERROR_RULE, at, bad_traffic, deploy, metric, rules, run


def _held_series(engine: Engine) -> int:
    total = 0
    for service, environment in engine.held_services():
        state = engine.inspect(service, environment)
        assert state is not None
        total += len(state.series)
    return total


def test_the_series_count_is_the_number_of_series_held() -> None:
    """Admissions, the cap, restores, forgetting and expiry never make the count drift."""
    rng = random.Random(3)
    engine = Engine(rules(ERROR_RULE), max_series=12, idle_ttl_ms=600_000)
    donor = Engine(rules(ERROR_RULE))
    services = [f"svc-{i}" for i in range(6)]
    for step in range(400):
        service = rng.choice(services)
        choice = rng.random()
        if choice < 0.7:
            region = rng.choice(["us-east", "eu-west", "asia-east"])
            run(engine, [metric(step, region=region, service=service, requests=20)])
            run(donor, [metric(step, region=region, service=service, requests=20)])
        elif choice < 0.8:
            run(engine, [deploy(step, deploy_id=f"d-{step}", service=service)])
        elif choice < 0.9:
            snapshot = donor.snapshot(service, "production")
            if snapshot is not None:
                engine.restore(decode_snapshot(encode_snapshot(snapshot)))
        else:
            engine.forget_services([(service, "production")])
        assert engine.stats.tracked_series == _held_series(engine), step
    engine.advance(at(10_000))
    assert engine.stats.expired_services > 0
    assert engine.stats.tracked_series == _held_series(engine)


def _state() -> tuple[ServiceState, DeployState]:
    return ServiceState("checkout", "production"), DeployState("d1", "checkout", "production", 0)


def test_timers_fire_in_due_order_and_ties_in_the_order_they_were_set() -> None:
    """Whatever their kind, timers come out by due time, equal times first set first out."""
    st, deploy_state = _state()
    binding = Binding.__new__(Binding)
    queue = TimerQueue()
    timers: list[tuple[int, Timer]] = [
        (30, NoDataCheck(st, binding)),
        (10, BakeEnd(st, deploy_state)),
        (20, Escalation(st, deploy_state)),
        (20, BakeEnd(st, deploy_state)),
    ]
    for due, timer in timers:
        queue.push(due, timer)
    assert queue.next_due == 10
    assert queue.pop(5) is None
    popped = []
    while (entry := queue.pop(100)) is not None:
        popped.append(entry)
    assert [(due, type(t).__name__) for due, t in popped] == [
        (10, "BakeEnd"),
        (20, "Escalation"),
        (20, "BakeEnd"),
        (30, "NoDataCheck"),
    ]
    assert len(queue) == 0


def test_an_idle_tick_pops_escalations_only() -> None:
    """Only escalations may run on the wall clock; the other timers wait for event time."""
    st, deploy_state = _state()
    queue = TimerQueue()
    queue.push(10, BakeEnd(st, deploy_state))
    queue.push(20, Escalation(st, deploy_state))
    assert queue.pop(100, escalations_only=True) == (20, Escalation(st, deploy_state))
    assert queue.pop(100, escalations_only=True) is None
    assert queue.next_due == 10


def test_forgetting_a_service_drops_its_timers_only() -> None:
    """Timers are matched by service key, so another service's timers stay."""
    st, deploy_state = _state()
    other = ServiceState("search", "production")
    queue = TimerQueue()
    queue.push(10, BakeEnd(st, deploy_state))
    queue.push(20, Escalation(other, deploy_state))
    queue.forget([("checkout", "production")])
    assert len(queue) == 1
    assert queue.next_due == 20


def test_idle_ticks_escalate_but_leave_a_bake_to_event_time() -> None:
    """An unconfirmed rollback escalates on an idle tick; the deploy's bake waits for events."""
    engine = Engine(rules(ERROR_RULE))
    decisions = run(engine, [deploy(0), *bad_traffic(0, 20), deploy(20, "completed")])
    assert [d.action for d in decisions] == ["rollback"]
    assert [d.action for d in engine.advance_idle(at(7200))] == ["escalate"]
    info = engine.deploy_of("checkout", "production")
    assert info is not None
    assert info.status == "baking"
    engine.advance(at(7200))
    info = engine.deploy_of("checkout", "production")
    assert info is not None
    assert info.status == "completed"


def test_a_new_series_at_the_cap_is_refused_unless_a_deploy_is_live() -> None:
    """At the cap a series without a live deploy is turned away and counted; a deploy's gets in."""
    engine = Engine(rules(ERROR_RULE), max_series=1)
    run(engine, [metric(0, region="us-east", requests=1), metric(1, region="eu-west", requests=1)])
    assert engine.stats.series_cap_rejections == 1
    run(engine, [deploy(2), metric(3, region="eu-west", requests=1)])
    assert engine.stats.tracked_series == 2
    state = engine.inspect("checkout", "production")
    assert state is not None
    assert all(isinstance(s, Series) for s in state.series.values())

"""Idle services are forgotten after the time-to-live, so memory follows live services."""

from __future__ import annotations

from pathlib import Path

from guardian.engine import Engine, load_rules
from tests.unit.engine.builders import at, deploy, metric

RULES = Path(__file__).resolve().parents[3] / "rules"
HOUR_S = 3600


def _engine() -> Engine:
    return Engine(load_rules(RULES), idle_ttl_ms=2 * HOUR_S * 1000)


def _feed(engine: Engine, service: str, start_s: int, seconds: int) -> None:
    for s in range(start_s, start_s + seconds, 10):
        engine.process(metric(s, service=service, requests=100, errors=0))
        engine.advance(at(s))


def test_a_silent_service_is_forgotten_and_a_busy_one_kept() -> None:
    """After two hours of event time without events, a service's series are let go."""
    engine = _engine()
    _feed(engine, "retired", 0, 60)
    _feed(engine, "busy", 0, 60)
    assert engine.stats.tracked_series == 2
    _feed(engine, "busy", 60, 2 * HOUR_S + 120)
    assert engine.stats.tracked_series == 1
    assert engine.stats.expired_services == 1
    assert engine.snapshot("retired", "production") is None

    _feed(engine, "retired", 2 * HOUR_S + 200, 30)  # it comes back: tracked afresh
    assert engine.stats.tracked_series == 2


def test_a_service_with_a_live_deploy_is_kept_however_quiet() -> None:
    """A deploy waiting on its executor must keep its state, events or not."""
    engine = _engine()
    engine.process(deploy(0, service="checkout"))
    _feed(engine, "checkout", 0, 60)
    _feed(engine, "busy", 0, 3 * HOUR_S)
    assert engine.deploy_of("checkout", "production") is not None
    assert engine.stats.expired_services == 0


def test_a_finished_deploy_goes_with_its_service() -> None:
    """Deploy lookups and timers of a forgotten service go too (nothing keeps it alive)."""
    engine = _engine()
    engine.process(deploy(0, service="checkout"))
    engine.process(deploy(30, "failed", service="checkout"))
    _feed(engine, "busy", 0, 3 * HOUR_S)
    assert engine.deploy_of("checkout", "production") is None
    assert engine.explain("d1") is None
    assert engine.stats.expired_services == 1


def test_without_a_ttl_nothing_expires() -> None:
    """``guardian replay`` and ``idle_service_ttl_s: 0`` keep every service."""
    engine = Engine(load_rules(RULES))
    _feed(engine, "retired", 0, 60)
    _feed(engine, "busy", 0, 3 * HOUR_S)
    assert engine.stats.tracked_series == 2

"""The demo's story: deterministic, valid v1 events, healthy then bad, replayed by the engine."""

from __future__ import annotations

from collections import defaultdict

import orjson

from guardian.cli.replay_cmd import run_replay
from guardian.demo.scenario import BAD_DEPLOY, HEALTHY_DEPLOY, Script, scenario
from guardian.engine import Engine, load_rules
from guardian.wire.events import decode_event
from tests.conftest import REPO

START = 1_795_478_400_000


def _rates(phase: str, cohort: str) -> float:
    requests = errors = 0
    for tick in scenario(START):
        if tick.phase != phase:
            continue
        for event in tick.events:
            if event["kind"] == "metric" and event["cohort"] == cohort:
                requests += event["values"]["requests"]
                errors += event["values"]["errors"]
    return errors / requests


def test_same_start_and_seed_give_identical_events() -> None:
    """The story is a pure function of its start time and seed."""
    assert scenario(START) == scenario(START)
    assert scenario(START) != scenario(START, seed=8)


def test_ticks_are_one_second_apart_and_every_event_decodes() -> None:
    """Each tick is one second of event time and each event is a valid v1 event at that time."""
    ticks = scenario(START, Script(warm_up_s=2, healthy_s=3, pause_s=1, bad_s=3))
    assert [t.at_ms - START for t in ticks] == [i * 1000 for i in range(9)]
    for tick in ticks:
        for event in tick.events:
            assert decode_event(orjson.dumps(event)).timestamp == tick.at_ms


def test_phases_have_the_promised_error_rates() -> None:
    """The healthy canary fails about 0.5% of requests, the bad release 7-9%."""
    assert 0.003 <= _rates("healthy canary", "canary") <= 0.007
    assert 0.003 <= _rates("healthy canary", "stable") <= 0.005
    assert 0.07 <= _rates("bad release", "canary") <= 0.09


def test_deploy_lifecycle_is_healthy_completed_then_bad_started() -> None:
    """The healthy deploy starts and completes before the bad one starts (and never ends)."""
    deploys = [
        (e["deploy_id"], e["type"])
        for tick in scenario(START)
        for e in tick.events
        if e["kind"] == "deploy"
    ]
    assert deploys == [
        (HEALTHY_DEPLOY, "started"),
        (HEALTHY_DEPLOY, "completed"),
        (BAD_DEPLOY, "started"),
    ]


def test_default_rules_roll_back_the_bad_release_only() -> None:
    """Replayed through the repository's rules, only the bad release gets a rollback."""
    engine = Engine(load_rules(REPO / "rules"))
    lines = [orjson.dumps(e) for tick in scenario(START) for e in tick.events]
    decisions = list(run_replay(engine, lines, on_bad=lambda n, r: None))
    by_deploy: dict[str | None, set[str]] = defaultdict(set)
    for d in decisions:
        by_deploy[d.deploy_id].add(d.action)
    assert "rollback" in by_deploy[BAD_DEPLOY]
    assert HEALTHY_DEPLOY not in by_deploy
    assert all(d.deploy_id == BAD_DEPLOY for d in decisions)

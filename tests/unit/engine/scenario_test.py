"""A small fleet through the default pack: bad deploys roll back once, healthy ones never.

The recording is generated (seeded): services with Poisson errors and jittered
latency, deploys of every strategy, some bad; it is then replayed as is, and
again with events reordered within the allowed lateness and 5% duplicated.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from guardian.engine import Engine, load_rules
from guardian.wire.events import InputEvent
from tests.unit.engine.builders import at, check, deploy, metric, run

RULES = load_rules(Path(__file__).resolve().parents[3] / "rules")
# service → (strategy, bad?)
DEPLOYS = {
    "cart": ("canary", True),
    "search": ("progressive", True),
    "orders": ("rolling", True),
    "auth": ("blue_green", False),  # bad only through a failing health check
    "users": ("canary", False),
    "maps": ("progressive", False),
    "feed": ("rolling", False),
}
QUIET = [f"quiet-{i}" for i in range(8)]


def _fleet(seed: int) -> list[InputEvent]:
    rng = random.Random(seed)
    events: list[InputEvent] = []
    for service in [*DEPLOYS, *QUIET]:
        strategy, bad = DEPLOYS.get(service, ("", False))
        if strategy:
            regions = ["us-east", "eu-west"] if strategy == "progressive" else ["us-east"]
            events.append(
                deploy(
                    0,
                    deploy_id=f"d-{service}",
                    service=service,
                    strategy=strategy,
                    regions=regions[:1],
                )
            )
            if strategy == "progressive":
                events.append(
                    deploy(
                        120,
                        "progressed",
                        deploy_id=f"d-{service}",
                        service=service,
                        strategy=strategy,
                        regions=regions,
                    )
                )
        cohorts = ["stable", "canary"] if strategy == "canary" else [None]
        for t in range(-1800, 400, 5):
            for region in ("us-east", "eu-west"):
                for cohort in cohorts:
                    broken = (
                        bad
                        and t >= 0
                        and cohort != "stable"
                        and (region == "us-east" or strategy != "progressive")
                    )
                    requests = 100
                    rate = 0.09 if broken else 0.007
                    errors = sum(1 for _ in range(requests) if rng.random() < rate)
                    latency = 150 * rng.uniform(0.9, 1.1) * (1.5 if broken else 1.0)
                    events.append(
                        metric(
                            t + rng.uniform(0, 1),
                            region=region,
                            cohort=cohort,
                            service=service,
                            requests=requests,
                            errors=errors,
                            latency_p95_ms=latency,
                        )
                    )
    events.append(check(90, "smoke_test", service="auth", region="us-east"))
    events.sort(key=lambda e: e.timestamp)
    return events


def _outcome(events: list[InputEvent]) -> set[tuple[str | None, str]]:
    decisions = run(Engine(RULES), events)
    return {(d.deploy_id, d.action) for d in decisions if d.action != "notify"}


EXPECTED = {
    ("d-cart", "rollback"),
    ("d-search", "rollback"),
    ("d-orders", "rollback"),
    ("d-auth", "rollback"),
    ("d-cart", "escalate"),
    ("d-search", "escalate"),
    ("d-orders", "escalate"),
    ("d-auth", "escalate"),
}


@pytest.mark.parametrize("seed", [1, 2])
def test_fleet_decisions(seed: int) -> None:
    """Exactly the bad deploys roll back (and escalate unconfirmed); nothing else is decided."""
    events = _fleet(seed)
    engine = Engine(RULES)
    decisions = run(engine, events)
    decisions += engine.advance(at(3600))
    rollbacks = [d for d in decisions if d.action == "rollback"]
    assert sorted(d.deploy_id or "" for d in rollbacks) == [
        "d-auth",
        "d-cart",
        "d-orders",
        "d-search",
    ]
    assert all(d.at_ms <= at(60) for d in rollbacks if d.deploy_id != "d-auth")
    search = next(d for d in rollbacks if d.deploy_id == "d-search")
    assert search.regions == ("us-east",)  # decided before the second wave
    notified = {d.service for d in decisions if d.action == "notify"}
    assert notified <= {"cart", "search", "orders"}  # the 1% alert on the bad ones only


def test_reordered_and_duplicated_recording_decides_the_same() -> None:
    """Reordering within the lateness bound and duplicating events changes no outcome."""
    events = _fleet(3)
    rng = random.Random(9)
    noisy = sorted(
        events + rng.sample(events, len(events) // 20),
        key=lambda e: e.timestamp + rng.uniform(0, 20_000),
    )
    assert _outcome(noisy) == _outcome(events) == EXPECTED - {(d, "escalate") for d, _ in EXPECTED}

"""The ``guardian demo`` story as data: a healthy canary, then a bad release, in v1 events.

Pure: no I/O, no clock, no randomness beyond a seeded generator, so the same
start time and seed give byte-identical events (the demo's events file
replays to the same decisions). The story, one tick per second of event time:

1. warm-up — stable traffic of ``checkout`` 2.4.0 (the pre-deploy baseline);
2. healthy canary — 2.4.1 goes out as a canary; stable and canary both fail
   about 0.5% of requests for a minute, then the deploy completes;
3. bad release — 2.5.0 goes out as a canary failing 7-9% of its requests
   while stable stays healthy; the guardian should roll it back.

Limits: one service, one region; the traffic numbers are shaped to make the
default rule pack's canary and error-rate rules fire on the bad release only.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Literal

Phase = Literal["warm-up", "healthy canary", "bad release"]

SERVICE = "checkout"
ENVIRONMENT = "production"
REGION = "us-east"
HEALTHY_DEPLOY = "d-demo-241"
BAD_DEPLOY = "d-demo-250"


@dataclass(frozen=True, slots=True)
class Cohort:
    """One series of traffic: who serves it and how well."""

    name: Literal["stable", "canary"]
    version: str
    requests_per_s: int
    error_rate: tuple[float, float]  # low, high: each second draws a rate in between
    latency_p95_ms: float


@dataclass(frozen=True, slots=True)
class Tick:
    """One second of event time: the events that happen in it."""

    second: int
    at_ms: int
    phase: Phase
    events: tuple[dict[str, Any], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Script:
    """How long each phase lasts, in seconds of event time."""

    warm_up_s: int = 10
    healthy_s: int = 60
    pause_s: int = 2
    bad_s: int = 60

    @property
    def total_s(self) -> int:
        """Length of the whole story."""
        return self.warm_up_s + self.healthy_s + self.pause_s + self.bad_s


def scenario(start_ms: int, script: Script | None = None, seed: int = 7) -> list[Tick]:
    """Every tick of the story, starting at ``start_ms`` (epoch ms) of event time."""
    s = script or Script()
    rng = random.Random(seed)  # noqa: S311 - demo traffic, not security
    carry: dict[str, float] = {}
    healthy_at = s.warm_up_s
    bad_at = s.warm_up_s + s.healthy_s + s.pause_s
    ticks: list[Tick] = []
    for second in range(s.total_s):
        at_ms = start_ms + second * 1000
        events: list[dict[str, Any]] = []
        if second < healthy_at:
            phase: Phase = "warm-up"
            cohorts = [Cohort("stable", "2.4.0", 950, (0.003, 0.005), 118.0)]
        elif second < bad_at:
            phase = "healthy canary"
            if second == healthy_at:
                events.append(deploy("started", HEALTHY_DEPLOY, "2.4.1", "2.4.0", at_ms))
            cohorts = [
                Cohort("stable", "2.4.0", 950, (0.003, 0.005), 118.0),
                Cohort("canary", "2.4.1", 50, (0.003, 0.007), 122.0),
            ]
            if second == healthy_at + s.healthy_s:
                events.append(deploy("completed", HEALTHY_DEPLOY, "2.4.1", "2.4.0", at_ms))
            if second >= healthy_at + s.healthy_s:
                cohorts = [Cohort("stable", "2.4.1", 1000, (0.003, 0.005), 120.0)]
        else:
            phase = "bad release"
            if second == bad_at:
                events.append(deploy("started", BAD_DEPLOY, "2.5.0", "2.4.1", at_ms))
            cohorts = [
                Cohort("stable", "2.4.1", 950, (0.003, 0.005), 120.0),
                Cohort("canary", "2.5.0", 50, (0.07, 0.09), 131.0),
            ]
        events.extend(metric(c, at_ms, rng, carry) for c in cohorts)
        ticks.append(Tick(second, at_ms, phase, tuple(events)))
    return ticks


def deploy(kind: str, deploy_id: str, version: str, previous: str, at_ms: int) -> dict[str, Any]:
    """A deploy event of the demo's canary releases."""
    return {
        "kind": "deploy",
        "type": kind,
        "deploy_id": deploy_id,
        "service": SERVICE,
        "environment": ENVIRONMENT,
        "version": version,
        "previous_version": previous,
        "strategy": "canary",
        "component": "application",
        "regions": [REGION],
        "traffic_percent": 5,
        "timestamp": at_ms,
        "actor": "guardian-demo",
    }


def metric(
    cohort: Cohort, at_ms: int, rng: random.Random, carry: dict[str, float]
) -> dict[str, Any]:
    """One second of a cohort's traffic; fractional errors carry over so rates stay true."""
    requests = cohort.requests_per_s
    low, high = cohort.error_rate
    expected = requests * rng.uniform(low, high) + carry.get(cohort.name, 0.0)
    errors = math.floor(expected)
    carry[cohort.name] = expected - errors
    latency = cohort.latency_p95_ms * rng.uniform(0.95, 1.05)
    return {
        "kind": "metric",
        "service": SERVICE,
        "environment": ENVIRONMENT,
        "region": REGION,
        "cohort": cohort.name,
        "version": cohort.version,
        "timestamp": at_ms,
        "values": {
            "requests": requests,
            "errors": errors,
            "latency_p95_ms": round(latency, 1),
            "latency_p99_ms": round(latency * 1.8, 1),
            "availability": round(1 - errors / requests, 5),
            "cpu_utilization": round(rng.uniform(0.35, 0.5), 3),
            "memory_utilization": round(rng.uniform(0.5, 0.6), 3),
        },
    }

"""Recordings of the four canaries the default pack misses (issue 15), with honest noise.

Each ``Recording`` is a canary deploy's ``started`` event and the v1 metric
events of both cohorts (stable first at each timestamp, one event per cohort
every 10 s), preceded by ``pre_minutes`` of stable-only traffic for rules
with a pre-deploy baseline. Requests are Poisson, errors binomial, and the
p95 of each event is the nearest-rank p95 of that event's sampled requests
(lognormal latencies; a cohort with no requests sends no p95). The misses:

- ``low_traffic_errors``: canary 1 req/s at 15% errors, stable 100 req/s at 0.4%;
- ``half_rps_failing``: canary 0.5 req/s failing 25%, stable 0.4%;
- ``five_x_errors``: canary 20 req/s at 2%, stable 0.4% (5x, but +1.6pp only);
- ``slow_p95``: canary p95 ~165 ms against stable's ~120 ms (20 req/s).

``healthy_twin`` gives the same traffic with the canary exactly as stable,
for the other side of each case. Pure and seeded: the same arguments give
the same events (``random.Random(seed)``; no numpy).

Limits: nearest-rank p95, no histogram buckets; no time-varying load.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any, Literal

from tests.support.events import T0, deploy

EVERY_S = 10
_Z95 = 1.6448536269514722  # standard normal 95th percentile
_SIGMA = 0.55  # log-sd of per-request latency: p95 = 2.5 x median
_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class Cohort:
    """Traffic of one cohort: request rate, error rate, true p95 of its requests."""

    rps: float
    error_rate: float
    p95_ms: float


@dataclass(frozen=True, slots=True)
class Spec:
    """One scenario: both cohorts and what a statistical rule should conclude."""

    description: str
    canary: Cohort
    stable: Cohort
    expect: Literal["worse", "not_worse"]


STABLE = Cohort(rps=100.0, error_rate=0.004, p95_ms=120.0)
MISSES: dict[str, Spec] = {
    "low_traffic_errors": Spec(
        "canary 1 req/s at 15% errors vs stable 100 req/s at 0.4%",
        Cohort(1.0, 0.15, 120.0),
        STABLE,
        "worse",
    ),
    "half_rps_failing": Spec(
        "canary 0.5 req/s failing 25% of requests vs stable at 0.4%",
        Cohort(0.5, 0.25, 120.0),
        STABLE,
        "worse",
    ),
    "five_x_errors": Spec(
        "canary 20 req/s at 2% errors vs stable at 0.4% (5x, +1.6pp)",
        Cohort(20.0, 0.02, 120.0),
        STABLE,
        "worse",
    ),
    "slow_p95": Spec(
        "canary p95 ~165 ms vs stable ~120 ms (+37%), 20 req/s",
        Cohort(20.0, 0.004, 165.0),
        STABLE,
        "worse",
    ),
}


@dataclass(frozen=True, slots=True)
class Recording:
    """A canary deploy and the metric events of both cohorts, in event-time order."""

    name: str
    description: str
    expect: Literal["worse", "not_worse"]
    deploy: dict[str, Any]
    events: list[dict[str, Any]]
    started_at_ms: int


def poisson(rng: random.Random, mean: float) -> int:
    """An exact Poisson draw: Knuth's product of uniforms below mean 10, else PTRS.

    PTRS is Hormann's transformed rejection ("The transformed rejection method
    for generating Poisson random variables", 1993), as numpy implements it.
    """
    if mean < 10.0:
        limit, product, count = math.exp(-mean), rng.random(), 0
        while product > limit:
            count += 1
            product *= rng.random()
        return count
    log_mean = math.log(mean)
    b = 0.931 + 2.53 * math.sqrt(mean)
    a = -0.059 + 0.02483 * b
    log_inv_alpha = math.log(1.1239 + 1.1328 / (b - 3.4))
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + mean + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + log_inv_alpha - math.log(a / (us * us) + b) <= (
            -mean + k * log_mean - math.lgamma(k + 1)
        ):
            return k


def binomial(rng: random.Random, n: int, p: float) -> int:
    """An exact binomial draw by geometric skips between successes (O(n p) draws)."""
    if p <= 0.0 or n <= 0:
        return 0
    if p >= 1.0:
        return n
    log_q = math.log1p(-p)
    count, position = 0, 0
    while True:
        position += int(math.log(1.0 - rng.random()) / log_q) + 1
        if position > n:
            return count
        count += 1


def sample_p95(rng: random.Random, n: int, p95_ms: float) -> float:
    """The nearest-rank p95 of ``n`` lognormal request latencies whose true p95 is ``p95_ms``.

    The k-th smallest of n draws is F^-1 of the k-th smallest of n uniforms,
    which is Beta(k, n - k + 1): one beta draw has exactly the distribution of
    sorting n sampled latencies and reading rank k = ceil(0.95 n).
    """
    k = math.ceil(0.95 * n)
    u = rng.betavariate(k, n - k + 1)
    u = min(max(u, 1e-300), 1.0 - 1e-16)
    median = p95_ms / math.exp(_SIGMA * _Z95)
    return median * math.exp(_SIGMA * _NORMAL.inv_cdf(u))


def _event(
    rng: random.Random, cohort_name: str, cohort: Cohort, at_ms: int, service: str
) -> dict[str, Any]:
    requests = poisson(rng, cohort.rps * EVERY_S)
    values: dict[str, float] = {
        "requests": float(requests),
        "errors": float(binomial(rng, requests, cohort.error_rate)),
    }
    if requests > 0:
        values["latency_p95_ms"] = round(sample_p95(rng, requests, cohort.p95_ms), 3)
    return {
        "kind": "metric",
        "service": service,
        "environment": "production",
        "region": "us-east",
        "cohort": cohort_name,
        "version": "2.4.1" if cohort_name == "canary" else "2.4.0",
        "timestamp": at_ms,
        "values": values,
    }


def record(
    name: str,
    spec: Spec,
    *,
    seed: int = 0,
    minutes: int = 30,
    pre_minutes: int = 30,
    start_ms: int = T0,
    service: str = "checkout",
) -> Recording:
    """Events of ``spec``: stable alone for ``pre_minutes``, then both cohorts for ``minutes``."""
    rng = random.Random(f"{name}/{seed}")
    events = [
        _event(rng, "stable", spec.stable, start_ms - i * EVERY_S * 1000, service)
        for i in range(pre_minutes * 60 // EVERY_S, 0, -1)
    ]
    for i in range(1, minutes * 60 // EVERY_S + 1):
        at_ms = start_ms + i * EVERY_S * 1000
        events.append(_event(rng, "stable", spec.stable, at_ms, service))
        events.append(_event(rng, "canary", spec.canary, at_ms, service))
    started = deploy("started", deploy_id=f"d-{name}", service=service, at_ms=start_ms)
    return Recording(name, spec.description, spec.expect, started, events, start_ms)


def miss(name: str, **kwargs: Any) -> Recording:
    """One of the four misses of issue 15 by name (see ``MISSES``)."""
    return record(name, MISSES[name], **kwargs)


def healthy_twin(name: str, **kwargs: Any) -> Recording:
    """The same traffic as miss ``name`` with the canary exactly like stable (no effect)."""
    spec = MISSES[name]
    canary = replace(spec.stable, rps=spec.canary.rps)
    twin = Spec(f"healthy twin of {name}", canary, spec.stable, "not_worse")
    return record(f"{name}-healthy", twin, **kwargs)

"""The tests against a frozen pre-deploy sample, paired span by span: false ``worse`` <= alpha.

``compare: {baseline: before}`` feeds each 30 s span after a deploy, with the
pre-deploy bucket it is paired with, to the same tests as a canary/stable
pair. Each bucket is used once, in an order fixed in advance, so the
e-processes stay test supermartingales: simulated healthy regions (the same
rate, the same latency distribution before and after) are called ``worse``
at most about alpha of the time over the whole window, at low and high traffic.
"""

from __future__ import annotations

import math
import random

import pytest

from guardian.stats import RateTest, ShiftTest

RUNS = 1000
SPANS = 60  # a 30m window of 30 s buckets
ALPHA = 0.01


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


@pytest.mark.parametrize("requests_per_span", [15, 600])
def test_healthy_rates_against_their_pre_deploy_buckets_are_rarely_called_worse(
    requests_per_span: int,
) -> None:
    """0.5% errors before and after: ``worse`` in at most ~1% of 1,000 regions' windows."""
    rng = random.Random(requests_per_span)
    test = RateTest(min_ratio=2.0, min_increase=0.005, confidence=1 - ALPHA)
    worse = 0
    for _ in range(RUNS):
        state = test.start()
        before = [_poisson(rng, requests_per_span * 0.005) for _ in range(SPANS)]
        for span, reference_errors in enumerate(before):
            errors = _poisson(rng, requests_per_span * 0.005)
            n = float(requests_per_span)
            test.update(state, n, min(errors, n), n, min(reference_errors, n), span * 30_000)
        worse += state.verdict == "worse"
    assert worse / RUNS <= ALPHA + 3 * math.sqrt(ALPHA / RUNS)


def test_healthy_latency_means_against_their_pre_deploy_buckets_are_rarely_called_worse() -> None:
    """The same p95 distribution before and after (means of 3 samples): ``worse`` <= ~1%."""
    rng = random.Random(3)
    test = ShiftTest(min_shift=0.2, tolerance=0.05, confidence=1 - ALPHA)

    def bucket() -> float:
        return sum(120.0 * rng.lognormvariate(0.0, 0.3) for _ in range(3)) / 3

    worse = 0
    for _ in range(RUNS):
        state = test.start()
        for span in range(SPANS):
            test.update(state, bucket(), bucket(), span * 30_000)
        worse += state.verdict == "worse"
    assert worse / RUNS <= ALPHA + 3 * math.sqrt(ALPHA / RUNS)


def test_a_region_five_times_worse_is_called_worse_within_the_window() -> None:
    """2.5% against 0.5% at 20 req/s: every region is called ``worse`` well within 30 minutes."""
    rng = random.Random(5)
    test = RateTest(min_ratio=2.0, min_increase=0.005, confidence=1 - ALPHA)
    spans_needed = []
    for _ in range(200):
        state = test.start()
        for span in range(SPANS):
            test.update(state, 600.0, _poisson(rng, 15.0), 600.0, _poisson(rng, 3.0), span)
            if state.verdict == "worse":
                spans_needed.append(span + 1)
                break
    assert len(spans_needed) == 200
    assert sorted(spans_needed)[100] <= 4  # median within 2 minutes

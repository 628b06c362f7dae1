"""The rate test: valid at any traffic, never on one error, quick on clear regressions."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardian.stats import RateTest
from guardian.stats.rates import RateState
from tests.support.canary_recordings import binomial, poisson

STEP_MS = 10_000


def simulate(
    test: RateTest,
    rng: random.Random,
    *,
    canary_rps: float,
    canary_rate: float,
    stable_rate: float,
    updates: int,
    stable_rps: float = 100.0,
) -> RateState:
    """Feed ``updates`` 10-second spans of Poisson requests and binomial errors."""
    state = test.start()
    for i in range(1, updates + 1):
        nc = poisson(rng, canary_rps * 10)
        ns = poisson(rng, stable_rps * 10)
        test.update(
            state,
            nc,
            binomial(rng, nc, canary_rate),
            ns,
            binomial(rng, ns, stable_rate),
            i * STEP_MS,
        )
        if state.worse_at_ms is not None:
            break
    return state


@pytest.mark.parametrize(
    ("canary", "stable"),
    [
        ((2, 1), (1000, 4)),  # one error in the first two requests, stable at 0.4%
        ((2, 1), (1000, 0)),  # ... while stable had no error at all
        ((1, 1), (100_000, 0)),  # the smallest canary share there is
        ((10, 1), (1000, 1)),
    ],
)
def test_one_error_never_rolls_back(canary: tuple[int, int], stable: tuple[int, int]) -> None:
    """A single canary error concludes nothing, however small the canary's share of traffic."""
    test = RateTest(min_ratio=2.0, min_increase=0.005)
    state = test.start()
    assert test.update(state, *canary, *stable, 0) == "inconclusive"
    assert test.e_values(state)[0] < 1 / test.alpha


@given(
    st.floats(1, 1e6),
    st.floats(1, 1e6),
    st.floats(0, 1e4),
    st.sampled_from([0.9, 0.95, 0.99, 0.999]),
)
def test_no_single_error_concludes(nc: float, ns: float, xs: float, confidence: float) -> None:
    """From fresh evidence, one canary error never says worse (max_ratio < 1/alpha)."""
    test = RateTest(confidence=confidence, min_ratio=1.5)
    state = test.start()
    assert test.update(state, nc, 1.0, ns, min(xs, ns), 0) != "worse"


@pytest.mark.parametrize(
    ("canary_rps", "canary_rate", "stable_rate", "within_updates"),
    [
        (1.0, 0.15, 0.004, 12),  # issue 15, miss (i): within 2 minutes
        (0.5, 0.25, 0.004, 12),  # miss (ii)
        (20.0, 0.02, 0.004, 12),  # miss (iii): 5x but only +1.6pp
        (100.0, 0.01, 0.005, 30),  # 2x at full traffic
    ],
)
def test_clear_regressions_are_caught_quickly(
    canary_rps: float, canary_rate: float, stable_rate: float, within_updates: int
) -> None:
    """Clear regressions are called worse within a few minutes of 10-second spans."""
    test = RateTest(min_ratio=2.0, min_increase=0.005)
    late = 0
    for seed in range(20):
        state = simulate(
            test,
            random.Random(seed),
            canary_rps=canary_rps,
            canary_rate=canary_rate,
            stable_rate=stable_rate,
            updates=within_updates,
        )
        late += state.worse_at_ms is None
    assert late <= 2


@pytest.mark.parametrize(
    ("canary_rps", "stable_rate"),
    [(0.3, 0.02), (1.0, 0.004), (10.0, 0.001), (100.0, 0.005), (300.0, 0.02)],
)
def test_identical_cohorts_rarely_reject(canary_rps: float, stable_rate: float) -> None:
    """Canaries exactly like stable are called worse at most about 1% of the time."""
    test = RateTest(min_ratio=2.0, min_increase=0.005)
    rng = random.Random(f"healthy/{canary_rps}/{stable_rate}")
    rejected = sum(
        simulate(
            test,
            rng,
            canary_rps=canary_rps,
            canary_rate=stable_rate,
            stable_rate=stable_rate,
            updates=60,
        ).worse_at_ms
        is not None
        for _ in range(200)
    )
    assert rejected <= 5  # 1% of 200 is 2; P(>5) < 2% even at exactly 1%


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([0.5, 3.0, 30.0]), st.sampled_from([0.001, 0.01]), st.integers(0, 10**6))
def test_identical_cohorts_rarely_reject_anywhere(
    canary_rps: float, rate: float, seed: int
) -> None:
    """Whatever the traffic, error rate and seed, few of 30 healthy canaries are called worse."""
    test = RateTest(min_ratio=2.0)
    rng = random.Random(seed)
    rejected = sum(
        simulate(
            test, rng, canary_rps=canary_rps, canary_rate=rate, stable_rate=rate, updates=30
        ).worse_at_ms
        is not None
        for _ in range(30)
    )
    assert rejected <= 3  # P(>= 4 of 30) < 3e-4 at the 1% bound


counts = st.tuples(st.integers(0, 5000), st.integers(0, 5000), st.integers(0, 5000)).map(
    lambda t: (t[0], min(t[1], t[0]), t[2])
)


@given(st.lists(st.tuples(counts, counts), max_size=40), st.floats(0, 0.05))
def test_e_values_stay_finite_and_positive(
    spans: list[tuple[tuple[int, int, int], tuple[int, int, int]]], floor: float
) -> None:
    """Whatever the counts, e-values are never negative or NaN and p-values lie in (0, 1]."""
    test = RateTest(min_ratio=2.0, min_increase=floor)
    state = test.start()
    for i, ((nc, xc, _), (ns, xs, _)) in enumerate(spans):
        test.update(state, nc, xc, ns, min(xs, ns), i * STEP_MS)
        for value in test.e_values(state):
            assert value >= 0.0  # it may underflow to 0 after overwhelming evidence of health
            assert math.isfinite(value)
        assert all(math.isfinite(x) for x in state.log_worse + state.log_not_worse)
    evidence = test.evidence(state)
    assert 0.0 < evidence.p_value_worse <= 1.0
    assert 0.0 < evidence.p_value_not_worse <= 1.0


@given(
    st.lists(
        st.tuples(st.integers(1, 10_000), st.integers(1, 10_000), st.integers(0, 200)),
        max_size=40,
    ),
    st.floats(0, 0.05),
)
def test_canary_within_its_share_never_gains_evidence(
    spans: list[tuple[int, int, int]], floor: float
) -> None:
    """A canary whose errors never exceed its share of all errors keeps the worse e-value <= 1."""
    test = RateTest(min_ratio=2.0, min_increase=floor)
    state = test.start()
    for i, (nc, ns, xs) in enumerate(spans):
        xc = min(nc, xs * nc // ns)  # x_c / (x_c + x_s) <= n_c / (n_c + n_s)
        test.update(state, nc, xc, ns, min(xs, ns), i * STEP_MS)
    assert test.e_values(state)[0] <= 1.0 + 1e-9


def test_healthy_canary_is_shown_not_worse() -> None:
    """A canary with plenty of traffic and stable's error rate ends not worse, with evidence."""
    test = RateTest(min_ratio=2.0)
    state = simulate(
        test, random.Random(7), canary_rps=100.0, canary_rate=0.01, stable_rate=0.01, updates=60
    )
    evidence = test.evidence(state)
    assert evidence.verdict == "not_worse"
    assert evidence.decided_at_ms is not None
    assert evidence.elapsed_ms == evidence.decided_at_ms - STEP_MS
    assert evidence.e_value_not_worse >= 1 / test.alpha or evidence.p_value_not_worse <= 0.01
    ratio, difference = evidence.estimates
    assert ratio.low < 1.0 < ratio.high
    assert difference.low < 0.0 < difference.high


def test_evidence_of_a_rollback() -> None:
    """Evidence gives both cohorts' counts, the effect and its interval, e/p-values, timing."""
    test = RateTest(min_ratio=2.0, min_increase=0.005)
    state = simulate(
        test, random.Random(3), canary_rps=1.0, canary_rate=0.15, stable_rate=0.004, updates=60
    )
    evidence = test.evidence(state)
    assert evidence.test == "rates"
    assert evidence.verdict == "worse"
    assert evidence.effect == "errors >= 2x and +0.5pp at 99% confidence"
    assert evidence.canary["errors"] >= 2
    assert evidence.stable["requests"] > evidence.canary["requests"]
    assert evidence.e_value_worse >= 100.0
    assert evidence.p_value_worse <= 0.01
    ratio, _ = evidence.estimates
    assert ratio.name == "rate_ratio"
    assert ratio.low > 1.0
    assert evidence.started_at_ms == STEP_MS
    assert evidence.elapsed_ms == state.worse_at_ms - STEP_MS  # type: ignore[operator]


def test_floor_raises_the_bar_at_low_error_rates() -> None:
    """With +0.5pp, a 2x canary at 0.1% (only +0.1pp) gathers far less evidence than without."""
    with_floor = RateTest(min_ratio=2.0, min_increase=0.005)
    without = RateTest(min_ratio=2.0)
    spans = [(1000, 2, 1000, 1)] * 30
    states = []
    for test in (with_floor, without):
        state = test.start()
        for i, span in enumerate(spans):
            test.update(state, *span, i * STEP_MS)
        states.append(test.e_values(state)[1])
    assert states[0] > states[1]  # more evidence that it is not worse by the (larger) effect


def test_no_evidence_from_spans_without_errors_or_traffic() -> None:
    """Spans with no errors, no canary traffic or no stable traffic leave the e-values at 1."""
    test = RateTest()
    state = test.start()
    for span in [(0, 0, 1000, 5), (10, 0, 0, 0), (10, 0, 1000, 0)]:
        test.update(state, *span, 0)
    assert test.e_values(state) == pytest.approx((1.0, 1.0))
    assert test.evidence(state).verdict == "inconclusive"


def test_no_estimates_before_both_cohorts_have_traffic() -> None:
    """Estimates need requests in both cohorts."""
    test = RateTest()
    state = test.start()
    test.update(state, 0, 0, 100, 1, 0)
    assert test.evidence(state).estimates == ()
    assert test.evidence(state).elapsed_ms is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 0.3}, "confidence"),
        ({"min_ratio": 1.0}, "min_ratio"),
        ({"min_ratio": math.inf}, "min_ratio"),
        ({"min_increase": -0.1}, "min_increase"),
        ({"max_ratio": 100.0}, "max_ratio"),
        ({"min_ratio": 4.0, "max_ratio": 3.0}, "max_ratio"),
    ],
)
def test_bad_hypotheses_are_refused(kwargs: dict[str, float], message: str) -> None:
    """A hypothesis that makes no sense, or would let one error conclude, is a ValueError."""
    with pytest.raises(ValueError, match=message):
        RateTest(**kwargs)


def test_default_cap_follows_confidence() -> None:
    """The largest alternative stays below 1/alpha: 64 at 99%, 12.8 at 95%."""
    assert RateTest().max_ratio == pytest.approx(64.0)
    assert RateTest(confidence=0.95).max_ratio == pytest.approx(12.8)


@pytest.mark.parametrize(
    "span",
    [(-1, 0, 10, 0), (10, 11, 10, 0), (10, 0, 10, 11), (math.nan, 0, 10, 0), (10, 0, math.inf, 0)],
)
def test_bad_counts_are_refused(span: tuple[float, float, float, float]) -> None:
    """Negative, non-finite or more errors than requests is a ValueError, and changes nothing."""
    test = RateTest()
    state = test.start()
    with pytest.raises(ValueError, match="must"):
        test.update(state, *span, 0)
    assert state.updates == 0

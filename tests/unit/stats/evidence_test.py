"""Shared parts: mixtures without overflow, always-valid p-values, intervals, snapshots."""

from __future__ import annotations

import json
import math
import random

import msgspec
import pytest

from guardian.stats import CountPairing, LatestSample, RateState, RateTest, ShiftState, ShiftTest
from guardian.stats.evidence import cs_radius, e_value, log_mix, p_value


@pytest.mark.parametrize(
    ("weights", "wealth", "expected"),
    [
        ((0.5, 0.5), (0.0, 0.0), 1.0),
        ((0.5, 0.5), (math.log(3.0), 0.0), 2.0),
        ((1.0,), (800.0,), math.exp(700.0)),  # saturated, not an overflow
    ],
)
def test_mixture_of_e_values(
    weights: tuple[float, ...], wealth: tuple[float, ...], expected: float
) -> None:
    """The mixture sum_i w_i e^L_i is computed in logs and saturates instead of overflowing."""
    log_weights = tuple(math.log(w) for w in weights)
    assert e_value(log_mix(log_weights, list(wealth))) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("max_log_e", "expected"), [(0.0, 1.0), (-3.0, 1.0), (math.log(200.0), 0.005)]
)
def test_p_value_is_one_over_the_largest_e_value(max_log_e: float, expected: float) -> None:
    """The always-valid p-value is 1 / max e-value, capped at 1."""
    assert p_value(max_log_e) == pytest.approx(expected)


def test_confidence_sequence_is_wider_than_a_fixed_sample_interval() -> None:
    """Valid at every moment costs width: the radius exceeds 2.58 standard errors and shrinks."""
    radii = [cs_radius(1.0 / math.sqrt(n), n, 0.01, 10.0) for n in (5.0, 50.0, 500.0)]
    assert all(r * math.sqrt(n) > 2.58 for r, n in zip(radii, (5, 50, 500), strict=True))
    assert radii == sorted(radii, reverse=True)
    assert cs_radius(1.0, 0.0, 0.01, 10.0) == math.inf


def test_evidence_is_json() -> None:
    """Evidence encodes to JSON as it is, for decisions and replay --explain."""
    test = RateTest()
    state = test.start()
    test.update(state, 100, 3, 1000, 4, 1795478410000)
    data = msgspec.json.decode(msgspec.json.encode(test.evidence(state)))
    assert data["test"] == "rates"
    assert data["verdict"] == "inconclusive"
    assert data["canary"] == {"requests": 100.0, "errors": 3.0}
    assert {e["name"] for e in data["estimates"]} == {"rate_ratio", "rate_difference"}


def _rate_spans(seed: int) -> list[tuple[int, int, int, int]]:
    rng = random.Random(seed)
    spans = []
    for _ in range(120):
        nc, ns = rng.randint(5, 30), rng.randint(900, 1100)
        spans.append((nc, sum(rng.random() < 0.05 for _ in range(nc)), ns, rng.randint(0, 8)))
    return spans


@pytest.mark.parametrize("cut", [0, 1, 37, 119])
def test_restored_rate_state_decides_as_the_uninterrupted_one(cut: int) -> None:
    """A rate state saved as JSON and restored mid-stream ends where an unbroken one ends."""
    test = RateTest(min_ratio=2.0, min_increase=0.005)
    spans = _rate_spans(cut)
    whole, broken = test.start(), test.start()
    for i, span in enumerate(spans):
        test.update(whole, *span, i * 10_000)
        if i == cut:
            broken = RateState.from_dict(json.loads(json.dumps(broken.to_dict())))
        test.update(broken, *span, i * 10_000)
    assert broken.to_dict() == whole.to_dict()
    assert test.evidence(broken) == test.evidence(whole)


def test_restored_shift_state_and_pairing_continue_exactly() -> None:
    """Shift states and cohort pairings restore from JSON with nothing lost."""
    test = ShiftTest()
    state, pairing, latest = test.start(), CountPairing(), LatestSample()
    for i in range(20):
        test.update(state, 130.0 + i, 100.0, i * 10_000, 100.0, 1000.0)
    pairing.add("canary", 10.0, 1.0, 30_000)
    latest.set(118.5, 40_000, 990.0)
    for original in (state, pairing, latest):
        restored = type(original).from_dict(json.loads(json.dumps(original.to_dict())))
        assert restored.to_dict() == original.to_dict()
    assert test.evidence(ShiftState.from_dict(state.to_dict())) == test.evidence(state)


def test_snapshot_with_other_fields_is_refused() -> None:
    """A snapshot of another shape (an older version, another class) is a ValueError."""
    data = RateTest().start().to_dict()
    del data["updates"]
    with pytest.raises(ValueError, match="updates"):
        RateState.from_dict(data)

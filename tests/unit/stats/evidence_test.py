"""Shared arithmetic: mixtures without overflow, always-valid p-values, confidence sequences."""

from __future__ import annotations

import math

import msgspec
import pytest

from guardian.stats import RateTest
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

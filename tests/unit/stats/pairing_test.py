"""Cohort pairing: counts of both cohorts over one shared span, stable's latest sample."""

from __future__ import annotations

import pytest

from guardian.stats import CountPairing, LatestSample
from guardian.stats.pairing import Cohort

Pair = tuple[float, float, float, float]


@pytest.mark.parametrize(
    ("events", "pairs"),
    [
        ([("stable", 1000, 4), ("canary", 10, 1)], [(10, 1, 1000, 4)]),
        ([("canary", 10, 1), ("stable", 1000, 4)], [(10, 1, 1000, 4)]),
        (  # a cohort that reports twice before the other sums both events
            [("canary", 10, 0), ("canary", 5, 1), ("stable", 900, 3)],
            [(15, 1, 900, 3)],
        ),
        (
            [("stable", 1000, 4), ("canary", 10, 1), ("stable", 990, 2), ("canary", 0, 0)],
            [(10, 1, 1000, 4), (0, 0, 990, 2)],
        ),
        ([("stable", 1000, 4), ("stable", 1000, 5)], []),
    ],
)
def test_pairs_cover_one_shared_span(
    events: list[tuple[Cohort, float, float]], pairs: list[Pair]
) -> None:
    """An update is handed over as soon as both cohorts reported since the last one."""
    pairing = CountPairing()
    got = [p for e in events if (p := pairing.add(*e)) is not None]
    assert got == pairs


@pytest.mark.parametrize(
    ("samples", "at_ms", "max_age_ms", "expected"),
    [
        ([], 0, 10_000, None),
        ([(120.0, 0)], 10_000, 10_000, 120.0),
        ([(120.0, 0)], 10_001, 10_000, None),
        ([(120.0, 20_000), (90.0, 10_000)], 20_000, 0, 120.0),  # an older sample is ignored
        ([(120.0, 10_000), (130.0, 20_000)], 20_000, 0, 130.0),
    ],
)
def test_latest_sample_is_fresh_or_nothing(
    samples: list[tuple[float, int]], at_ms: int, max_age_ms: int, expected: float | None
) -> None:
    """Stable's newest sample is handed out only while it is recent enough to pair with."""
    latest = LatestSample()
    for value, ts in samples:
        latest.set(value, ts, requests=1000.0)
    assert latest.fresh(at_ms, max_age_ms) == expected

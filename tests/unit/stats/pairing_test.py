"""Cohort pairing: counts of both cohorts over one shared span, stable's latest sample."""

from __future__ import annotations

import pytest

from guardian.stats import CountPairing, LatestSample
from guardian.stats.pairing import Cohort

Pair = tuple[float, float, float, float]


@pytest.mark.parametrize(
    ("events", "pairs"),
    [
        # handed over at the first event of a later instant
        ([("stable", 1000, 4, 0), ("canary", 10, 1, 0), ("canary", 9, 0, 1)], [(10, 1, 1000, 4)]),
        ([("canary", 10, 1, 0), ("stable", 1000, 4, 0), ("stable", 9, 0, 1)], [(10, 1, 1000, 4)]),
        ([("stable", 1000, 4, 0), ("canary", 10, 1, 0)], []),  # the instant is not over yet
        (  # a cohort that reports twice before the other sums both events
            [("canary", 10, 0, 0), ("canary", 5, 1, 1), ("stable", 900, 3, 2), ("canary", 1, 0, 3)],
            [(15, 1, 900, 3)],
        ),
        (
            [
                ("stable", 1000, 4, 0),
                ("canary", 10, 1, 0),
                ("stable", 990, 2, 5),
                ("canary", 0, 0, 5),
                ("canary", 3, 0, 6),
            ],
            [(10, 1, 1000, 4), (0, 0, 990, 2)],
        ),
        ([("stable", 1000, 4, 0), ("stable", 1000, 5, 1)], []),
        # a late event (an older instant) joins the sums being built
        (
            [
                ("canary", 10, 1, 5),
                ("stable", 1000, 4, 5),
                ("canary", 4, 0, 3),
                ("canary", 1, 0, 6),
            ],
            [(14, 1, 1000, 4)],
        ),
    ],
)
def test_pairs_cover_one_shared_span(
    events: list[tuple[Cohort, float, float, int]], pairs: list[Pair]
) -> None:
    """An update is handed over once both cohorts reported and a later instant begins."""
    pairing = CountPairing()
    got = [p for e in events if (p := pairing.add(*e)) is not None]
    assert got == pairs


def test_the_order_of_one_instants_events_changes_nothing() -> None:
    """Canary and stable of the same instant, in either order: the same updates."""
    canary = [("canary", 30.0, float(t % 3), t) for t in range(12)]
    stable = [("stable", 100.0, 0.0, t) for t in range(0, 12, 5)]
    orders = [
        sorted([*canary, *stable], key=lambda e: (e[3], e[0] == "stable")),
        sorted([*canary, *stable], key=lambda e: (e[3], e[0] == "canary")),
    ]
    results = []
    for events in orders:
        pairing = CountPairing()
        results.append([p for e in events if (p := pairing.add(*e)) is not None])  # type: ignore[arg-type]
    assert results[0] == results[1]
    assert len(results[0]) == 3  # closed at t=1, 6 and 11


@pytest.mark.parametrize(
    ("samples", "at_ms", "max_age_ms", "expected"),
    [
        ([], 0, 10_000, None),
        ([(120.0, 0)], 10_000, 10_000, 120.0),
        ([(120.0, 0)], 10_001, 10_000, None),
        ([(120.0, 20_000), (90.0, 10_000)], 25_000, 5_000, 120.0),  # an older sample is ignored
        ([(120.0, 10_000), (130.0, 20_000)], 25_000, 5_000, 130.0),
        # a sample of the canary's own instant is never used: the one before it is
        ([(120.0, 10_000), (130.0, 20_000)], 20_000, 10_000, 120.0),
        ([(130.0, 20_000)], 20_000, 10_000, None),
    ],
)
def test_latest_sample_is_fresh_or_nothing(
    samples: list[tuple[float, int]], at_ms: int, max_age_ms: int, expected: float | None
) -> None:
    """Stable's newest sample is handed out only while it is recent enough to pair with."""
    latest = LatestSample()
    for value, ts in samples:
        latest.set(value, ts, requests=1000.0)
    found = latest.fresh(at_ms, max_age_ms)
    assert (found[0] if found else None) == expected
    if found:
        assert found[1] == 1000.0

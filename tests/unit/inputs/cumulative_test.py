"""Cumulative counters become per-interval increments; resets are restarts; state is bounded."""

from __future__ import annotations

import pytest

from guardian.inputs.cumulative import SeriesState, series_key

MIN = 60_000


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        pytest.param([(1000, 10.0)], [None], id="first point is the baseline"),
        pytest.param([(1000, 10.0), (2000, 15.0)], [None, 5.0], id="increase"),
        pytest.param([(1000, 10.0), (2000, 10.0)], [None, 0.0], id="no change"),
        pytest.param([(1000, 10.0), (2000, 3.0)], [None, 3.0], id="went down: restart"),
        pytest.param([(1000, 10.0), (1000, 12.0)], [None, None], id="same time: duplicate"),
        pytest.param([(2000, 10.0), (1000, 5.0)], [None, None], id="older: out of order"),
        pytest.param([(0, 10.0), (6 * MIN, 20.0)], [None, None], id="gap: new baseline"),
        pytest.param(
            [(0, 10.0), (6 * MIN, 20.0), (7 * MIN, 25.0)], [None, None, 5.0], id="after gap"
        ),
    ],
)
def test_increments_of_one_series(
    points: list[tuple[int, float]], expected: list[float | None]
) -> None:
    """Each point's increment against the previous one of the same series."""
    state = SeriesState(max_interval_ms=5 * MIN)
    found = []
    for ts, value in points:
        batch = state.batch()
        found.append(batch.increment("s", ts, value))
        batch.commit()
    assert found == expected


def test_a_new_start_time_is_a_restart_even_if_the_value_grew() -> None:
    """OTLP start times reveal a restart that a larger value would hide."""
    batch = SeriesState().batch()
    assert batch.increment("s", 1000, 10.0, start_ms=1) is None
    assert batch.increment("s", 2000, 50.0, start_ms=1500) == 50.0


def test_a_series_known_to_be_new_counts_its_first_point() -> None:
    """A series that started after the converter counts in full."""
    batch = SeriesState().batch()
    assert batch.increment("s", 1000, 7.0, new_series=True) == 7.0


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param((10.0, 4.0, 6.0), (15.0, 5.0, 10.0), (5.0, 1.0, 4.0), id="increase"),
        pytest.param((10.0, 4.0, 6.0), (3.0, 1.0, 2.0), (3.0, 1.0, 2.0), id="restart"),
        pytest.param((10.0, 4.0, 6.0), (12.0, 3.0, 9.0), (12.0, 3.0, 9.0), id="one bucket down"),
        pytest.param((10.0, 10.0), (12.0, 6.0, 6.0), (12.0, 6.0, 6.0), id="new bounds"),
    ],
)
def test_vector_increments(
    before: tuple[float, ...], after: tuple[float, ...], expected: tuple[float, ...]
) -> None:
    """A histogram's count and buckets move together; any decrease is a restart."""
    batch = SeriesState().batch()
    assert batch.increments("h", 1000, before) is None
    assert batch.increments("h", 2000, after) == expected


def test_vector_duplicates_and_gaps_give_nothing() -> None:
    """A repeated or long-delayed histogram point adds nothing."""
    state = SeriesState(max_interval_ms=MIN)
    batch = state.batch()
    batch.increments("h", 1000, (1.0, 1.0))
    assert batch.increments("h", 1000, (2.0, 2.0)) is None
    assert batch.increments("h", 5 * MIN, (3.0, 3.0)) is None
    assert batch.out_of_order == 1


def test_updates_take_effect_only_on_commit() -> None:
    """A batch that is not committed leaves the state as it was, so a retry sees the same."""
    state = SeriesState()
    first = state.batch()
    first.increment("s", 1000, 10.0)
    first.commit()
    retried = [state.batch().increment("s", 2000, 15.0) for _ in range(2)]
    assert retried == [5.0, 5.0]


def test_forget_ends_a_series() -> None:
    """After a staleness marker the series starts from a baseline again."""
    state = SeriesState()
    batch = state.batch()
    batch.increment("s", 1000, 10.0)
    batch.forget("s")
    batch.commit()
    assert len(state) == 0
    assert state.batch().increment("s", 2000, 15.0) is None


def test_a_million_series_names_keep_the_state_at_its_cap() -> None:
    """A flood of distinct names evicts the least recently updated; the live series stays."""
    state = SeriesState(max_series=1000)
    for i in range(1_000_000):
        batch = state.batch()
        batch.increment(f"junk-{i}", 1000 + i, 1.0)
        if i % 100 == 0:
            batch.increment("live", 1000 + i, float(i))
        batch.commit()
    assert len(state) == 1000
    assert state.evicted == 1_000_001 - 1000
    assert state.get("live") is not None


def test_long_identities_become_short_digests() -> None:
    """A series with a huge label set costs 16 bytes of key, distinct per identity."""
    short = series_key("a=1")
    long_a, long_b = series_key("x" * 10_000 + "a"), series_key("x" * 10_000 + "b")
    assert short == "a=1"
    assert isinstance(long_a, bytes)
    assert len(long_a) == 16
    assert long_a != long_b


def test_max_series_must_be_positive() -> None:
    """A cap of zero is a configuration mistake."""
    with pytest.raises(ValueError, match="max_series"):
        SeriesState(max_series=0)


def test_a_batch_holding_a_series_makes_a_concurrent_one_wait_then_count_nothing_twice() -> None:
    """Two batches from the same baseline: the second waits, then sees the first's point."""
    state = SeriesState()
    baseline = state.batch()
    baseline.increment("s", 1000, 10.0)
    baseline.commit()
    first, second = state.batch(), state.batch()
    assert first.increment("s", 2000, 15.0) == 5.0
    assert second.increment("s", 2000, 15.0) == 5.0  # computed on the same baseline
    assert first.claim() is None
    assert second.claim() == frozenset({first})
    first.commit()
    again = state.batch()
    assert again.increment("s", 2000, 15.0) is None  # the same sample: counted once
    assert again.claim() is None
    again.commit()
    assert state.claimed() == 0
    assert state.out_of_order == 1


def test_a_batch_computed_before_a_commit_is_stale() -> None:
    """A batch read before another committed the same series must be computed again."""
    state = SeriesState()
    stale = state.batch()
    stale.increment("s", 1000, 10.0)
    fresh = state.batch()
    fresh.increment("s", 1000, 10.0)
    fresh.commit()
    assert stale.claim() == frozenset()
    assert state.claimed() == 0


def test_a_released_batch_leaves_the_state_and_its_series_free() -> None:
    """A batch whose events were not written gives its series back unchanged."""
    state = SeriesState()
    held = state.batch()
    held.increment("s", 1000, 10.0)
    held.increment("t", 1000, 1.0)
    assert held.claim() is None
    assert state.claimed() == 2
    held.release()
    held.release()
    assert state.claimed() == 0
    assert state.get("s") is None
    other = state.batch()
    other.increment("s", 1000, 10.0)
    assert other.claim() is None


def test_a_commit_never_moves_a_series_back_to_an_older_point() -> None:
    """Batches committed out of order keep the newest point and count a reset as a restart."""
    state = SeriesState()
    older, newer = state.batch(), state.batch()
    older.increment("s", 1000, 10.0)
    newer.increment("s", 2000, 20.0)
    newer.commit()
    older.commit()
    assert state.get("s") == (0, 2000, 20.0)
    after = state.batch()
    assert after.increment("s", 2000, 20.0) is None  # a duplicate of the newest
    assert after.increment("s", 3000, 4.0) == 4.0  # went down: a restart, not -16

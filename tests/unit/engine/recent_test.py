"""The lateness buffer of a series (flat arrays) keeps what a plain list of samples would."""

from __future__ import annotations

from bisect import bisect_right

from hypothesis import given
from hypothesis import strategies as st

from guardian.engine.state import Series

KEYS = ("requests", "errors", "latency_p95_ms")
values_st = st.one_of(
    st.fixed_dictionaries({k: st.sampled_from([0.0, 1.0, 2.5]) for k in KEYS}),
    st.dictionaries(st.sampled_from(KEYS), st.sampled_from([0.0, 1.0]), max_size=3),
)
samples_st = st.lists(st.tuples(st.integers(0, 40), values_st), max_size=40)


Sample = tuple[int, dict[str, float]]


def reference(samples: list[Sample], lateness: int) -> tuple[list[bool], list[Sample]]:
    """The same rules over a plain list: duplicates refused, time order, horizon eviction."""
    kept: list[Sample] = []
    accepted = []
    newest = -1
    for ts, values in samples:
        newest = max(newest, ts)
        duplicate = any(t == ts and v == values for t, v in kept)
        accepted.append(not duplicate)
        if not duplicate:
            kept.insert(bisect_right([t for t, _ in kept], ts), (ts, values))
            kept = [(t, v) for t, v in kept if t >= newest - lateness]
    return accepted, kept


@given(samples_st, st.integers(0, 15))
def test_the_buffer_matches_a_plain_list(samples: list[Sample], lateness: int) -> None:
    """Out of order, duplicates, keys unlike the first sample's: the same samples come back."""
    series = Series("us-east", "")
    accepted = []
    newest = -1
    for ts, values in samples:
        newest = max(newest, ts)
        accepted.append(series.remember(ts, dict(values), newest - lateness))
    expected_accepted, expected_kept = reference(samples, lateness)
    assert accepted == expected_accepted
    assert series.since(0) == expected_kept
    assert series.since(20) == [(t, v) for t, v in expected_kept if t >= 20]


def test_a_sample_with_other_keys_is_kept_whole() -> None:
    """A sample whose keys differ from the schema's comes back with its own keys."""
    series = Series("us-east", "")
    series.remember(1, {"requests": 1.0, "errors": 0.0}, 0)
    series.remember(2, {"errors": 3.0}, 0)
    series.remember(3, {"requests": 2.0, "errors": 1.0}, 0)
    assert series.since(0) == [
        (1, {"requests": 1.0, "errors": 0.0}),
        (2, {"errors": 3.0}),
        (3, {"requests": 2.0, "errors": 1.0}),
    ]
    series.remember(10, {"requests": 2.0, "errors": 1.0}, 3)
    assert series.recent.odd is None  # the odd sample left the horizon

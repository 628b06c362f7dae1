"""Keep Python's cyclic garbage collector off the hot path.

Per-event objects are short-lived and acyclic; with the default thresholds
(700, 10, 10) the collector runs thousands of times per second and, every
hundred runs, traverses every long-lived object — the windows of all series.
Measured in `benchmarks/api.py` (5,000 events/s, about 700,000 tracked
objects): ten full collections of 90–170 ms in 35 s, which were the API's and
the detector's latency tail. Freezing the startup objects and raising the
young threshold leaves one short full collection in the same run; memory
stays bounded because cycles are still collected.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """For a long-running process: freeze what startup made, collect young objects rarely."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


@contextmanager
def tuned_gc() -> Iterator[None]:
    """The same tuning for one bounded job (a replay), with the old settings restored after."""
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()

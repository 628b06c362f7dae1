"""GC tuning: the daemon's one-way tuning and the replay's restoring context."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from guardian.gc_tuning import THRESHOLDS, tune_gc, tuned_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    old = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*old)


@pytest.mark.usefixtures("restored_gc")
def test_tune_gc_freezes_startup_objects_and_raises_thresholds() -> None:
    gc.unfreeze()
    tune_gc()
    assert gc.get_threshold() == THRESHOLDS
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("restored_gc")
def test_tuned_gc_restores_the_previous_settings() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    with tuned_gc():
        assert gc.get_threshold() == THRESHOLDS
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0

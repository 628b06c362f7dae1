"""The memory budget: the series cap follows from it unless max_series is set explicitly."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from guardian.config.settings import (
    DAEMON_RESERVED_MB,
    MIN_MEMORY_BUDGET_MB,
    SERIES_BUDGET_BYTES,
    Settings,
    series_cap_for,
)


def test_the_default_budget_fits_a_sidecar() -> None:
    """256 MB by default; the cap is what is left after the daemon's share, per series."""
    settings = Settings()
    assert settings.memory_budget_mb == 256
    assert settings.max_series is None
    expected = (256 - DAEMON_RESERVED_MB) * 1024 * 1024 // SERIES_BUDGET_BYTES
    assert settings.series_cap == expected


def test_a_larger_budget_holds_more_series() -> None:
    """The cap grows in proportion to the budget beyond the reserved share."""
    assert series_cap_for(1024) > 5 * series_cap_for(256)


def test_explicit_max_series_overrides_the_budget() -> None:
    """``max_series`` set by hand is the cap, whatever the budget says."""
    assert Settings(max_series=500, memory_budget_mb=4096).series_cap == 500


def test_a_budget_below_the_daemons_own_needs_is_refused() -> None:
    """A budget the daemon cannot run in is a configuration error, not a silent tiny cap."""
    with pytest.raises(ValidationError, match="memory_budget_mb"):
        Settings(memory_budget_mb=MIN_MEMORY_BUDGET_MB - 1)

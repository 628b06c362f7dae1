"""Verdicts, the evidence an operator reads, and the arithmetic both tests share.

A sequential test here answers ``worse`` (act), ``not_worse`` (the canary is
at least as good, within the effect that matters) or ``inconclusive`` (not
enough evidence yet: reported, never a silent pass). ``Evidence`` carries what
an operator needs to trust a verdict: the test, both cohorts' sizes, the
estimated effect with its interval, the e-values and always-valid p-values,
and how long the test took in event time.

Intervals are *asymptotic* confidence sequences (Waudby-Smith, Arbour, Sinha,
Kennedy & Ramdas, "Time-uniform central limit theory and asymptotic
confidence sequences", Ann. Statist. 2024) with Robbins' two-sided normal
mixture boundary (Howard, Ramdas, McAuliffe & Sekhon, "Time-uniform,
nonparametric, nonasymptotic confidence sequences", Ann. Statist. 2021,
eq. 14): they hold uniformly over time once the counts are not tiny, and only
describe the effect. The verdicts come from the exact e-processes of
``rates.py`` and ``shift.py``, never from these intervals.

``Snapshot`` lets every state object be saved as plain JSON and restored
exactly (floats round-trip), so a restored engine decides as an
uninterrupted one would.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Self

import msgspec

Verdict = Literal["worse", "not_worse", "inconclusive"]


def verdict_of(worse_at_ms: int | None, not_worse_at_ms: int | None) -> Verdict:
    """``worse`` once that e-value hit 1/alpha, else ``not_worse`` alike, else inconclusive."""
    if worse_at_ms is not None:
        return "worse"
    if not_worse_at_ms is not None:
        return "not_worse"
    return "inconclusive"


TestKind = Literal["rates", "shift"]

_MAX_LOG = 700.0  # exp(709) overflows a float; e-values beyond e^700 are reported as e^700


class Estimate(msgspec.Struct, frozen=True, kw_only=True):
    """An estimated effect with its (asymptotic, time-uniform) confidence interval."""

    name: str
    value: float
    low: float
    high: float


class Evidence(msgspec.Struct, frozen=True, kw_only=True):
    """Everything behind one test's verdict, as plain JSON-able values."""

    test: TestKind
    verdict: Verdict
    confidence: float
    effect: str
    canary: dict[str, float]
    stable: dict[str, float]
    estimates: tuple[Estimate, ...]
    e_value_worse: float
    e_value_not_worse: float
    # Always-valid p-values: 1 / (largest e-value so far), capped at 1.
    p_value_worse: float
    p_value_not_worse: float
    updates: int
    started_at_ms: int | None
    decided_at_ms: int | None
    elapsed_ms: int | None


def check_confidence(confidence: float) -> float:
    """The test level alpha = 1 - confidence, after checking confidence lies in (0.5, 1)."""
    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0.5 and 1, got {confidence}")
    return 1.0 - confidence


def log_mix(log_weights: tuple[float, ...], log_wealth: list[float]) -> float:
    """log of the mixture sum_i w_i exp(L_i), computed without overflow."""
    top = max(w + x for w, x in zip(log_weights, log_wealth, strict=True))
    total = 0.0
    for w, x in zip(log_weights, log_wealth, strict=True):
        total += math.exp(w + x - top)
    return top + math.log(total)


def e_value(log_e: float) -> float:
    """An e-value from its log, saturated instead of overflowing."""
    return math.exp(min(log_e, _MAX_LOG))


def p_value(max_log_e: float) -> float:
    """The always-valid p-value 1 / max_s E_s (Ville's inequality), capped at 1."""
    return 1.0 if max_log_e <= 0.0 else math.exp(-min(max_log_e, _MAX_LOG))


def cs_radius(std_error: float, information: float, alpha: float, tuned_for: float) -> float:
    """Half-width of an asymptotic confidence sequence for an estimate.

    ``std_error`` is the estimate's current standard error, ``information`` its
    effective sample size (errors seen, samples paired) and ``tuned_for`` the
    sample size at which the boundary is tightest. Robbins' normal mixture with
    prior precision r gives, for a Gaussian martingale S with variance V,
    |S| < sqrt((V + r) (log(1 + V / r) + 2 log(1 / alpha))); dividing by V
    gives the radius below, with r / V = tuned_for / (c * information).
    """
    if information <= 0.0 or not math.isfinite(std_error):
        return math.inf
    two_log = 2.0 * math.log(1.0 / alpha)
    ratio = tuned_for / ((two_log + math.log(1.0 + two_log)) * information)
    return std_error * math.sqrt((1.0 + ratio) * (math.log1p(1.0 / ratio) + two_log))


class Snapshot:
    """Saving and restoring a ``__slots__`` state object as a plain dict of numbers."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """Every slot by name; lists are copied, so the snapshot does not move with the state."""
        out: dict[str, Any] = {}
        names: tuple[str, ...] = self.__slots__
        for name in names:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, list) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """The state ``to_dict`` saved; ValueError if the fields are not exactly this class's."""
        names: set[str] = set(cls.__slots__)
        if set(data) != names:
            raise ValueError(f"{cls.__name__} snapshot fields differ: {sorted(set(data) ^ names)}")
        state = cls.__new__(cls)
        for name, value in data.items():
            setattr(state, name, list(value) if isinstance(value, list) else value)
        return state

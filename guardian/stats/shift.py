"""Anytime-valid comparison of a latency-like gauge (per-sample p95, p99) of canary vs stable.

Construction: a sequential sign test. Each canary sample c_t is paired with
the stable cohort's sample r_t of the same span of event time (pairing
cancels load that hits both cohorts). Two Bernoulli indicators per pair:

- ``worse``: y_t = [c_t > (1 + tolerance) r_t]. Under "the canary's typical
  sample is at most ``tolerance`` above stable's" (the median of c_t / r_t is
  at most 1 + tolerance, given the past) P(y_t = 1) <= 1/2.
- ``not_worse``: z_t = [c_t < (1 + min_shift) r_t]. Under "the canary is worse
  by at least the effect that matters" P(z_t = 1) <= 1/2.

Each indicator feeds a mixture of Bernoulli likelihood ratios against p = 1/2
over alternatives p in (0.6, 0.75, 0.9, 0.97) (a discrete stand-in for the
beta-binomial mixture, restricted to p > 1/2 so the null may be composite:
every factor has expectation <= 1 whenever P(hit) <= 1/2). The mixture is a
test supermartingale; by Ville's inequality it crosses 1/alpha with
probability <= alpha however long the canary is watched. Its state is four
counts. A factor is at most 2 x 0.97, so with alpha = 0.01 at least nine
paired samples are needed to conclude: never on a handful. See Ramdas,
Grunwald, Vovk & Shafer, "Game-theoretic statistics and safe anytime-valid
inference", Statist. Sci. 2023, for e-processes and mixtures; the sign test
is the distribution-free choice because only P(hit) <= 1/2 is assumed.

Why a tolerance: the p95 of a small sample is biased (nearest rank of 39
requests is the 38th, whose median is the 95.8th percentile), so a healthy
canary serving far fewer requests than stable does not compare as an equal.
Samples with fewer than ``min_requests`` requests (either cohort) are
skipped; from 50 requests on, the median bias stays within +3% for lognormal
latencies with sigma 0.55 (p95 = 2.5 x median) and +5% with sigma 1, inside
the default 5% tolerance. A canary between tolerance and
the effect is in the indifference zone: either verdict may come, or none.

Limits: samples must cover disjoint spans of event time (a p95 over the last
minute reported every 10 s overlaps its neighbours, so the indicators are not
independent): set ``min_interval_ms`` to the metric's own window then. The
reported shift is exp(mean log(c_t / r_t)) - 1 with an asymptotic confidence
sequence; the verdicts do not depend on it.
"""

from __future__ import annotations

import math

from guardian.stats.evidence import (
    Estimate,
    Evidence,
    Snapshot,
    Verdict,
    check_confidence,
    cs_radius,
    e_value,
    p_value,
    verdict_of,
)

_ALTERNATIVES = (0.6, 0.75, 0.9, 0.97)  # P(hit) under the alternatives of the mixture
_TUNED_SAMPLES = 10.0  # the interval is tightest around this many paired samples


def _relative(log_ratio: float) -> float:
    """exp(log_ratio) - 1, saturated for absurd ratios instead of overflowing."""
    return math.expm1(max(-700.0, min(log_ratio, 700.0)))


class ShiftState(Snapshot):
    """One canary's running evidence: four counts, a running mean of log ratios, times."""

    __slots__ = (
        "last_at_ms",
        "m2_log",
        "max_log_not_worse",
        "max_log_worse",
        "mean_log",
        "not_worse_at_ms",
        "not_worse_hits",
        "samples",
        "skipped",
        "started_at_ms",
        "worse_at_ms",
        "worse_hits",
    )

    def __init__(self) -> None:
        self.samples = 0
        self.skipped = 0
        self.worse_hits = 0
        self.not_worse_hits = 0
        self.mean_log = 0.0
        self.m2_log = 0.0
        self.max_log_worse = 0.0
        self.max_log_not_worse = 0.0
        self.last_at_ms: int | None = None
        self.started_at_ms: int | None = None
        self.worse_at_ms: int | None = None
        self.not_worse_at_ms: int | None = None

    @property
    def verdict(self) -> Verdict:
        """``worse`` once its e-value hit 1/alpha, else ``not_worse`` alike, else inconclusive."""
        return verdict_of(self.worse_at_ms, self.not_worse_at_ms)


class ShiftTest:
    """The hypothesis of one rule: the shift that matters, the tolerance and the confidence."""

    __slots__ = (
        "_log_threshold",
        "_log_weight",
        "_terms",
        "alpha",
        "confidence",
        "min_interval_ms",
        "min_requests",
        "min_shift",
        "tolerance",
    )

    def __init__(
        self,
        *,
        min_shift: float = 0.2,
        tolerance: float = 0.05,
        confidence: float = 0.99,
        min_requests: float = 50.0,
        min_interval_ms: int = 0,
    ) -> None:
        self.alpha = check_confidence(confidence)
        self.confidence = confidence
        if not (math.isfinite(min_shift) and min_shift > 0.0):
            raise ValueError(f"min_shift must be a positive finite number, got {min_shift}")
        if not 0.0 <= tolerance < min_shift:
            raise ValueError(f"tolerance must lie in [0, min_shift), got {tolerance}")
        if min_requests < 0 or min_interval_ms < 0:
            raise ValueError("min_requests and min_interval_ms must not be negative")
        self.min_shift = min_shift
        self.tolerance = tolerance
        self.min_requests = min_requests
        self.min_interval_ms = min_interval_ms
        self._terms = tuple((math.log(2.0 * p), math.log(2.0 * (1.0 - p))) for p in _ALTERNATIVES)
        self._log_weight = -math.log(len(_ALTERNATIVES))
        self._log_threshold = math.log(1.0 / self.alpha)

    def start(self) -> ShiftState:
        """Fresh evidence for one canary (e-values 1, nothing decided)."""
        return ShiftState()

    def _log_e(self, hits: int, samples: int) -> float:
        """log of the mixture e-value after ``hits`` hits in ``samples`` paired samples."""
        misses = samples - hits
        top = -math.inf
        for log_hit, log_miss in self._terms:
            term = hits * log_hit + misses * log_miss
            if term > top:  # noqa: PLR1730 - max() costs several times more here
                top = term
        total = 0.0
        for log_hit, log_miss in self._terms:
            total += math.exp(hits * log_hit + misses * log_miss - top)
        return self._log_weight + top + math.log(total)

    def update(
        self,
        state: ShiftState,
        canary_value: float,
        stable_value: float,
        at_ms: int,
        canary_requests: float | None = None,
        stable_requests: float | None = None,
    ) -> Verdict:
        """Pair one canary sample with stable's sample of the same span; return the verdict."""
        c, r = canary_value, stable_value
        if not (0.0 <= c < math.inf and 0.0 <= r < math.inf):
            raise ValueError(f"samples must be finite and non-negative: canary {c}, stable {r}")
        if state.started_at_ms is None:
            state.started_at_ms = at_ms
        small = (canary_requests is not None and canary_requests < self.min_requests) or (
            stable_requests is not None and stable_requests < self.min_requests
        )
        too_soon = (
            self.min_interval_ms > 0
            and state.last_at_ms is not None
            and at_ms - state.last_at_ms < self.min_interval_ms
        )
        if small or too_soon or c <= 0.0 or r <= 0.0:
            state.skipped += 1
            return state.verdict
        state.last_at_ms = at_ms
        n = state.samples = state.samples + 1
        # Welford's running mean and squared deviations of log(c / r), for the estimate.
        log_ratio = math.log(c) - math.log(r)
        delta = log_ratio - state.mean_log
        state.mean_log += delta / n
        state.m2_log += delta * (log_ratio - state.mean_log)
        # An e-value only rises on a hit: only then can it cross or set a new high. Once a
        # side has concluded, its p-value stays at its value then.
        if c > (1.0 + self.tolerance) * r:
            state.worse_hits += 1
            if state.worse_at_ms is None:
                log_e = self._log_e(state.worse_hits, n)
                if log_e > state.max_log_worse:
                    state.max_log_worse = log_e
                    if log_e >= self._log_threshold:
                        state.worse_at_ms = at_ms
        if c < (1.0 + self.min_shift) * r:
            state.not_worse_hits += 1
            if state.not_worse_at_ms is None:
                log_e = self._log_e(state.not_worse_hits, n)
                if log_e > state.max_log_not_worse:
                    state.max_log_not_worse = log_e
                    if log_e >= self._log_threshold:
                        state.not_worse_at_ms = at_ms
        return state.verdict

    def skip(self, state: ShiftState, at_ms: int) -> Verdict:
        """Count a sample that could not be paired (it is no evidence either way)."""
        if state.started_at_ms is None:
            state.started_at_ms = at_ms
        state.skipped += 1
        return state.verdict

    # ------------------------------------------------------------------ reporting
    def e_values(self, state: ShiftState) -> tuple[float, float]:
        """The current e-values against "not worse than tolerance" and "worse by the effect"."""
        return (
            e_value(self._log_e(state.worse_hits, state.samples)),
            e_value(self._log_e(state.not_worse_hits, state.samples)),
        )

    def describe(self) -> str:
        """The hypothesis in an operator's words: ``shift >= +20% (tolerance 5%) at 99%``."""
        return (
            f"shift >= +{self.min_shift * 100:g}% (tolerance {self.tolerance * 100:g}%)"
            f" at {self.confidence * 100:g}% confidence"
        )

    def estimates(self, state: ShiftState) -> tuple[Estimate, ...]:
        """The canary's shift over stable, exp(mean log ratio) - 1, with its confidence sequence."""
        n = state.samples
        if n < 2:
            return ()
        se = math.sqrt(state.m2_log / (n - 1) / n)
        radius = cs_radius(se, float(n), self.alpha, _TUNED_SAMPLES)
        mean = state.mean_log
        return (
            Estimate(
                name="shift",
                value=_relative(mean),
                low=_relative(mean - radius),
                high=_relative(mean + radius),
            ),
        )

    def evidence(self, state: ShiftState) -> Evidence:
        """Everything behind the verdict, for a decision and ``replay --explain``."""
        worse, not_worse = self.e_values(state)
        verdict = state.verdict
        decided = state.worse_at_ms if verdict == "worse" else state.not_worse_at_ms
        started = state.started_at_ms
        return Evidence(
            test="shift",
            verdict=verdict,
            confidence=self.confidence,
            effect=self.describe(),
            canary={
                "samples": float(state.samples),
                "skipped": float(state.skipped),
                "above_tolerance": float(state.worse_hits),
                "below_effect": float(state.not_worse_hits),
            },
            stable={"samples": float(state.samples)},
            estimates=self.estimates(state),
            e_value_worse=worse,
            e_value_not_worse=not_worse,
            p_value_worse=p_value(state.max_log_worse),
            p_value_not_worse=p_value(state.max_log_not_worse),
            updates=state.samples + state.skipped,
            started_at_ms=started,
            decided_at_ms=decided,
            elapsed_ms=decided - started if decided is not None and started is not None else None,
        )

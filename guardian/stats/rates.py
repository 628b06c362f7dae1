"""Anytime-valid comparison of two rates (errors out of requests) between canary and stable.

Construction (after Lindon & Malek, "Anytime-Valid Inference for Multinomial
Count Data", NeurIPS 2022, and Lindon, Sanden & Shirikian, "Rapid Regression
Detection in Software Deployments through Sequential Testing", KDD 2022):
errors are Poisson in exposure (requests), canary rate = rho x stable rate.
Conditional on the m = x_c + x_s errors of one update (both cohorts over the
same span of event time), the canary's share is Binomial(m, theta) with
theta = rho n_c / (rho n_c + n_s). The likelihood ratio of one update,
rho against rho0, is

    (rho / rho0)^x_c * ((1 + (rho0 - 1) theta0) / (1 + (rho - 1) theta0))^m,

theta0 = n_c / (n_c + n_s). Conditioning on m per update makes the test
immune to the stable rate moving over time (an incident that hits both
cohorts), and needs no estimate of it for validity.

- ``worse`` rejects "canary as good as stable" (rho <= 1): a mixture (prior
  weights 1/(i+1)) of likelihood-ratio martingales with rho0 = 1 and
  alternatives rho_i = min(k c_i, max_ratio), c = 1, 2, 4, 8, 32, where k is the
  smallest effect that matters: ``min_ratio``, raised to
  1 + min_increase / (stable rate so far) when an absolute floor (``+0.5pp``)
  is set, rounded down to a level 2^(j/16) so its grid can be reused. The
  stable rate is estimated from updates *before* this one, so each factor is
  predictable and the mixture stays a test supermartingale; by Ville's
  inequality a healthy canary is called worse with probability <= alpha
  however long it runs. Each factor is at most max_ratio < 1/alpha, so no
  single error concludes.
- ``not_worse`` rejects "canary worse by at least the effect" (rho >= rho_b):
  alternatives rho_b^f, f in (0.5, 0.25, 0, -0.5), against rho0 = rho_b, where
  rho_b = max(min_ratio, 1 + min_increase / u) and u is a ~3-sigma upper
  bound of the stable rate so far (so rho_b does not overstate the boundary).

Validity: exact for Poisson counts. For binomial counts (errors <= requests)
the canary's share given m is hypergeometric, which Hoeffding (1963, Thm 4)
shows is dominated by the binomial in convex order, so ``worse`` stays valid;
``not_worse`` is valid to first order in the error rate. The floor enters the
``not_worse`` boundary through an estimate of the stable rate, so that side
is approximate when the floor, not the ratio, sets the boundary. Counts must
be increments over disjoint spans of event time (not cumulative counters,
not sliding sums). A canary that turns bad after a long healthy run is
detected more slowly (the evidence against it starts from below 1): this is
a test per canary, not a change detector.

The estimate (rate ratio and difference) carries an asymptotic confidence
sequence (``evidence.cs_radius``); the verdicts do not depend on it. A side
that has concluded stops: its e-value and always-valid p-value stay as they
were then (the engine acts on the verdict; nothing is gained by going on).
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
    log_mix,
    p_value,
    verdict_of,
)

_WORSE_MULTIPLIERS = (1.0, 2.0, 4.0, 8.0, 32.0)  # alternatives k, 2k, ... capped at max_ratio
# Prior weights 1/(i+1): small effects need the most evidence, large ones bring plenty.
_WORSE_WEIGHTS = (1.0, 1 / 2, 1 / 3, 1 / 4, 1 / 5)
_LEVELS_PER_DOUBLING = 16  # plug-in effects are rounded down to 2^(j/16) to reuse their grids
_NOT_WORSE_POWERS = (0.5, 0.25, 0.0, -0.5)  # alternatives rho_b^f below the boundary
_UPPER_Z = 3.0  # sigmas of the stable-rate upper bound behind the not_worse boundary
_TUNED_ERRORS = 10.0  # the interval is tightest around this many errors


class RateState(Snapshot):
    """One canary's running evidence: a few floats, as many after an hour as after a minute."""

    __slots__ = (
        "canary_errors",
        "canary_requests",
        "log_not_worse",
        "log_worse",
        "max_log_not_worse",
        "max_log_worse",
        "not_worse_at_ms",
        "stable_errors",
        "stable_requests",
        "started_at_ms",
        "updates",
        "worse_at_ms",
    )

    def __init__(self, worse: int, not_worse: int) -> None:
        self.log_worse = [0.0] * worse
        self.log_not_worse = [0.0] * not_worse
        self.canary_requests = 0.0
        self.canary_errors = 0.0
        self.stable_requests = 0.0
        self.stable_errors = 0.0
        self.updates = 0
        self.max_log_worse = 0.0
        self.max_log_not_worse = 0.0
        self.started_at_ms: int | None = None
        self.worse_at_ms: int | None = None
        self.not_worse_at_ms: int | None = None

    @property
    def verdict(self) -> Verdict:
        """``worse`` once its e-value hit 1/alpha, else ``not_worse`` alike, else inconclusive."""
        return verdict_of(self.worse_at_ms, self.not_worse_at_ms)


class RateTest:
    """One rule's hypothesis: the effect that matters and the confidence; shared by all states."""

    __slots__ = (
        "_fixed_not_worse",
        "_fixed_worse",
        "_grids_not_worse",
        "_grids_worse",
        "_log_cap",
        "_log_threshold",
        "_log_weights_not_worse",
        "_log_weights_worse",
        "_multipliers",
        "alpha",
        "confidence",
        "max_ratio",
        "min_increase",
        "min_ratio",
    )

    def __init__(
        self,
        *,
        min_ratio: float = 2.0,
        min_increase: float = 0.0,
        confidence: float = 0.99,
        max_ratio: float | None = None,
    ) -> None:
        self.alpha = check_confidence(confidence)
        self.confidence = confidence
        if not (math.isfinite(min_ratio) and min_ratio > 1.0):
            raise ValueError(f"min_ratio must be a finite number above 1, got {min_ratio}")
        if not (math.isfinite(min_increase) and 0.0 <= min_increase < 1.0):
            raise ValueError(f"min_increase must lie in [0, 1), got {min_increase}")
        cap = min(64.0, 0.64 / self.alpha) if max_ratio is None else max_ratio
        if not min_ratio <= cap < 1.0 / self.alpha:
            # A factor above 1/alpha would let one error conclude on its own.
            raise ValueError(
                f"max_ratio must lie in [min_ratio, 1/alpha) = [{min_ratio}, {1 / self.alpha:g}),"
                f" got {cap}"
            )
        self.min_ratio = min_ratio
        self.min_increase = min_increase
        self.max_ratio = cap
        self._log_cap = math.log(cap)
        self._log_threshold = math.log(1.0 / self.alpha)
        self._multipliers = _WORSE_MULTIPLIERS
        total = sum(_WORSE_WEIGHTS)
        self._log_weights_worse = tuple(math.log(w / total) for w in _WORSE_WEIGHTS)
        self._log_weights_not_worse = (-math.log(len(_NOT_WORSE_POWERS)),) * len(_NOT_WORSE_POWERS)
        # Without a floor the alternatives never move: compute them once. With one, the
        # plug-in effect is rounded down to a level (still a function of past data only, so
        # still predictable) whose grid is computed once and kept: at most a few hundred.
        self._fixed_worse = self._worse_grid(min_ratio)
        self._fixed_not_worse = self._not_worse_grid(min_ratio)
        self._grids_worse: dict[int, tuple[tuple[float, float], ...]] = {}
        self._grids_not_worse: dict[int, tuple[float, tuple[tuple[float, float], ...]]] = {}

    def start(self) -> RateState:
        """Fresh evidence for one canary (e-values 1, nothing decided)."""
        return RateState(len(self._multipliers), len(_NOT_WORSE_POWERS))

    # ------------------------------------------------------------------ grids
    def _worse_grid(self, k: float) -> tuple[tuple[float, float], ...]:
        """(log rho_i, rho_i - 1) of each alternative of the ``worse`` mixture."""
        grid = []
        for multiplier in self._multipliers:
            rho = min(k * multiplier, self.max_ratio)
            grid.append((math.log(rho), rho - 1.0))
        return tuple(grid)

    def _not_worse_grid(self, boundary: float) -> tuple[float, tuple[tuple[float, float], ...]]:
        """(rho_b - 1, ((log rho_a - log rho_b, rho_a - 1) per alternative))."""
        log_b = math.log(boundary)
        grid = tuple(((f - 1.0) * log_b, math.exp(f * log_b) - 1.0) for f in _NOT_WORSE_POWERS)
        return boundary - 1.0, grid

    def _level(self, effect: float) -> int:
        """The level 2^(j/16) at or just below ``effect`` (never below min_ratio's level)."""
        return math.floor(math.log2(effect) * _LEVELS_PER_DOUBLING + 1e-9)

    def _worse_alternatives(self, state: RateState) -> tuple[tuple[float, float], ...]:
        """The ``worse`` grid for the smallest ratio that matters given stable's past rate."""
        rate = (state.stable_errors + 0.5) / (state.stable_requests + 1.0)
        effect = 1.0 + self.min_increase / rate
        if effect <= self.min_ratio:
            return self._fixed_worse
        level = self._level(min(effect, self.max_ratio))
        grid = self._grids_worse.get(level)
        if grid is None:
            k = max(self.min_ratio, 2.0 ** (level / _LEVELS_PER_DOUBLING))
            grid = self._grids_worse[level] = self._worse_grid(k)
        return grid

    def _not_worse_alternatives(
        self, state: RateState
    ) -> tuple[float, tuple[tuple[float, float], ...]]:
        """The ``not_worse`` grid around rho_b, the floor taken at an upper bound of stable's rate.

        Rounding rho_b down keeps it at or below the true boundary, which is what validity needs.
        """
        if state.stable_requests <= 0.0:
            return self._fixed_not_worse
        x, z2 = state.stable_errors, _UPPER_Z * _UPPER_Z
        upper = (x + z2 / 2.0 + _UPPER_Z * math.sqrt(x + z2 / 4.0)) / state.stable_requests
        boundary = 1.0 + self.min_increase / upper
        if boundary <= self.min_ratio:
            return self._fixed_not_worse
        level = self._level(min(boundary, 1e6))
        grid = self._grids_not_worse.get(level)
        if grid is None:
            rho_b = max(self.min_ratio, 2.0 ** (level / _LEVELS_PER_DOUBLING))
            grid = self._grids_not_worse[level] = self._not_worse_grid(rho_b)
        return grid

    # ------------------------------------------------------------------ hot path
    def update(
        self,
        state: RateState,
        canary_requests: float,
        canary_errors: float,
        stable_requests: float,
        stable_errors: float,
        at_ms: int,
    ) -> Verdict:
        """Add one span's counts of both cohorts; return the verdict so far."""
        nc, xc, ns, xs = canary_requests, canary_errors, stable_requests, stable_errors
        # One chained comparison rejects negatives, NaN (every comparison is false), infinity
        # and more errors than requests.
        if not (0.0 <= xc <= nc < math.inf and 0.0 <= xs <= ns < math.inf):
            raise ValueError(
                "counts must be finite and non-negative, and errors must not exceed requests:"
                f" canary {xc}/{nc}, stable {xs}/{ns}"
            )
        if state.started_at_ms is None:
            state.started_at_ms = at_ms
        state.updates += 1
        m = xc + xs
        if m > 0.0 and nc > 0.0 and ns > 0.0:
            theta0 = nc / (nc + ns)
            floor = self.min_increase > 0.0
            # Each side stops once it has concluded: its e-value and p-value stay as they were.
            if state.worse_at_ms is None:
                self._worse_step(state, xc, m, theta0, floor, at_ms)
            if state.not_worse_at_ms is None:
                self._not_worse_step(state, xc, m, theta0, floor, at_ms)
        state.canary_requests += nc
        state.canary_errors += xc
        state.stable_requests += ns
        state.stable_errors += xs
        return state.verdict

    def _worse_step(
        self, state: RateState, xc: float, m: float, theta0: float, floor: bool, at_ms: int
    ) -> None:
        log_w = state.log_worse
        grid = self._worse_alternatives(state) if floor else self._fixed_worse
        top = -math.inf
        for i, (log_rho, rho_m1) in enumerate(grid):
            value = log_w[i] + xc * log_rho - m * math.log1p(rho_m1 * theta0)
            log_w[i] = value
            if value > top:  # noqa: PLR1730 - max() costs several times more here
                top = value
        # The mixture is below max_i exp(L_i): skip the exact sum unless it may be a new high.
        if top > state.max_log_worse:
            log_e = log_mix(self._log_weights_worse, log_w)
            if log_e > state.max_log_worse:
                state.max_log_worse = log_e
                if log_e >= self._log_threshold:
                    state.worse_at_ms = at_ms

    def _not_worse_step(
        self, state: RateState, xc: float, m: float, theta0: float, floor: bool, at_ms: int
    ) -> None:
        b_m1, alternatives = self._not_worse_alternatives(state) if floor else self._fixed_not_worse
        log_null = math.log1p(b_m1 * theta0)
        log_n = state.log_not_worse
        top = -math.inf
        for j, (log_ratio, rho_m1) in enumerate(alternatives):
            value = log_n[j] + xc * log_ratio - m * (math.log1p(rho_m1 * theta0) - log_null)
            log_n[j] = value
            if value > top:  # noqa: PLR1730 - max() costs several times more here
                top = value
        if top > state.max_log_not_worse:
            log_e = log_mix(self._log_weights_not_worse, log_n)
            if log_e > state.max_log_not_worse:
                state.max_log_not_worse = log_e
                if log_e >= self._log_threshold:
                    state.not_worse_at_ms = at_ms

    # ------------------------------------------------------------------ reporting
    def e_values(self, state: RateState) -> tuple[float, float]:
        """The current e-values against "as good as stable" and against "worse by the effect"."""
        return (
            e_value(log_mix(self._log_weights_worse, state.log_worse)),
            e_value(log_mix(self._log_weights_not_worse, state.log_not_worse)),
        )

    def describe(self) -> str:
        """The hypothesis in an operator's words: ``errors >= 2x (and +0.5pp) at 99%``."""
        text = f"errors >= {self.min_ratio:g}x"
        if self.min_increase > 0.0:
            text += f" and +{self.min_increase * 100:g}pp"
        return f"{text} at {self.confidence * 100:g}% confidence"

    def estimates(self, state: RateState) -> tuple[Estimate, ...]:
        """Rate ratio and difference (canary - stable), with asymptotic confidence sequences."""
        nc, xc = state.canary_requests, state.canary_errors
        ns, xs = state.stable_requests, state.stable_errors
        if nc <= 0.0 or ns <= 0.0:
            return ()
        # Half an error added to each count keeps the log ratio finite at zero errors.
        ratio = ((xc + 0.5) / nc) / ((xs + 0.5) / ns)
        se_log = math.sqrt(1.0 / (xc + 0.5) + 1.0 / (xs + 0.5))
        information = 1.0 / (se_log * se_log)
        radius = cs_radius(se_log, information, self.alpha, _TUNED_ERRORS)
        difference = xc / nc - xs / ns
        se_diff = math.sqrt((xc + 0.5) / (nc * nc) + (xs + 0.5) / (ns * ns))
        radius_diff = cs_radius(se_diff, information, self.alpha, _TUNED_ERRORS)
        return (
            Estimate(
                name="rate_ratio",
                value=ratio,
                low=ratio * math.exp(-radius),
                high=ratio * math.exp(radius),
            ),
            Estimate(
                name="rate_difference",
                value=difference,
                low=difference - radius_diff,
                high=difference + radius_diff,
            ),
        )

    def evidence(self, state: RateState) -> Evidence:
        """Everything behind the verdict, for a decision and ``replay --explain``."""
        worse, not_worse = self.e_values(state)
        verdict = state.verdict
        decided = state.worse_at_ms if verdict == "worse" else state.not_worse_at_ms
        started = state.started_at_ms
        return Evidence(
            test="rates",
            verdict=verdict,
            confidence=self.confidence,
            effect=self.describe(),
            canary={"requests": state.canary_requests, "errors": state.canary_errors},
            stable={"requests": state.stable_requests, "errors": state.stable_errors},
            estimates=self.estimates(state),
            e_value_worse=worse,
            e_value_not_worse=not_worse,
            p_value_worse=p_value(state.max_log_worse),
            p_value_not_worse=p_value(state.max_log_not_worse),
            updates=state.updates,
            started_at_ms=started,
            decided_at_ms=decided,
            elapsed_ms=decided - started if decided is not None and started is not None else None,
        )

"""Judging one rule on one series at one moment of event time, and wording the verdict.

``evaluate`` slides the binding's window to ``now`` (clipped to the deploy's
start for deploy-scoped rules), checks certainty (samples, volume), fetches
the baseline (pre-deploy buckets of the region, or the stable cohort's window
now) and compares. It records what it saw on the binding for ``explain`` and
returns whether the condition holds, whether a firing rule has resolved.
Wording (``reason_text``, ``evidence``) happens only when a rule fires.

Limits: the ``for`` clock, cooldown and one-rollback-per-deploy live in
``firing.py``; this module judges a single instant.
"""

from __future__ import annotations

from typing import Any

from guardian.engine.compare import Comparison
from guardian.engine.decision import Decision
from guardian.engine.rules.compiled import CompiledRule
from guardian.engine.state import Binding, DeployState, ServiceState

HOLDS = "holds"
BELOW = "condition not met"
FEW_SAMPLES = "samples"
LOW_VOLUME = "volume"
NO_DATA = "no data"
NO_BASELINE = "no baseline"
NOISE = "noise"
NOT_STARTED = "test not started"  # a ``compare`` rule whose test has seen nothing of this deploy


def format_duration(ms: int) -> str:
    """300000 → ``5m``; 90000 → ``1m30s``."""
    seconds = ms // 1000
    if seconds == 0:
        return f"{ms}ms"
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


def _bucket_value(aggregate: str, num: float, den: float, count: int) -> float | None:
    if count == 0:
        return None
    if aggregate == "ratio":
        return num / den if den > 0 else None
    if aggregate == "sum":
        return num
    if aggregate == "count":
        return float(count)
    return num / count  # mean; min/max/percentiles are approximated by the mean


def pre_deploy_baseline(
    rule: CompiledRule, st: ServiceState, region: str, deploy: DeployState, window_ms: int
) -> tuple[float | None, int]:
    """The measure over ``[start - window, start)`` in the region, any cohort."""
    store = st.baselines.get(region)
    if store is None or rule.measure is None:
        return None, 0
    start = deploy.started_at_ms
    num, den, count = store.query(rule.measure, start - window_ms, start)
    return _bucket_value(rule.aggregate, num, den, count), count


def _baseline(
    b: Binding, st: ServiceState, deploy: DeployState | None, cutoff: int
) -> float | None:
    rule = b.rule
    cond = rule.baseline
    assert cond is not None  # noqa: S101 - only called for baseline rules
    if cond.baseline == "pre_deploy":
        if deploy is None:
            return None
        cache = b.baseline_cache
        if cache is None or cache[0] != deploy.deploy_id:
            value, count = pre_deploy_baseline(
                rule, st, b.series.region, deploy, cond.baseline_window
            )
            if count < rule.spec.min_samples:
                value = None
            cache = b.baseline_cache = (deploy.deploy_id, value, count)
        return cache[1]
    region = b.series.region
    other = st.series.get((region, cond.baseline)) or st.series.get(
        (region, "baseline" if cond.baseline == "stable" else "stable")
    )
    agg = other.aggs.get(rule.agg_key) if other is not None and rule.agg_key else None
    if agg is None:
        return None
    agg.evict(cutoff)
    if agg.count < rule.spec.min_samples:
        return None
    return agg.value(rule.aggregate)


def evaluate(  # noqa: PLR0911, PLR0912, PLR0915 - the hot path: one call per rule per sample
    b: Binding, st: ServiceState, deploy: DeployState | None, now: int
) -> tuple[bool, bool]:
    """Judge ``b`` at ``now``: (condition holds, a firing rule may resolve).

    Slides the window (clipped to the deploy start for deploy rules), checks
    samples and volume, fetches the baseline if any, compares.
    """
    rule = b.rule
    if b.comparison is not None:
        return _compared(b, b.comparison, deploy), False
    cutoff = now - rule.window_ms
    if deploy is not None and rule.clipped and deploy.started_at_ms - 1 > cutoff:
        cutoff = deploy.started_at_ms - 1
    agg = b.agg
    entries = agg.entries
    if not entries or entries[agg.head] <= cutoff:  # rings keep no entries: always slide them
        agg.evict(cutoff)
    n = b.last_samples = agg.count
    if n < rule.min_samples:
        b.last_reason = FEW_SAMPLES
        return False, False
    if rule.min_volume:
        if rule.volume_from_den:
            volume = agg.sum_den
        else:
            vol = b.volume
            assert vol is not None  # noqa: S101 - compiled together with volume_key
            vol.evict(cutoff)
            volume = vol.sum_num
        b.last_volume = volume
        if volume < rule.min_volume:
            b.last_reason = LOW_VOLUME
            return False, False
    aggregate = rule.aggregate
    if aggregate == "mean":
        observed: float | None = agg.sum_num / n
    elif aggregate == "ratio":
        observed = agg.sum_num / agg.sum_den if agg.sum_den > 0 else None
    else:
        observed = agg.value(aggregate)
    b.last_observed = observed
    if observed is None:
        b.last_reason = NO_DATA
        return False, False
    op = rule.op
    assert op is not None  # noqa: S101 - metric rules always have a comparison
    cond = rule.baseline
    if cond is None:
        compared = observed
        holds = op(observed, rule.threshold)
    else:
        base = b.last_baseline = _baseline(b, st, deploy, cutoff)
        if base is None:
            b.last_reason = NO_BASELINE
            return False, False
        delta = observed - base if cond.increase is not None else base - observed
        if rule.unit == "%":
            compared = delta / base if base > 0 else (float("inf") if delta > 0 else 0.0)
        else:
            compared = delta
        holds = op(compared, rule.threshold)
        if holds and cond.min_delta > 0 and delta <= cond.min_delta:
            b.last_reason = NOISE
            return False, b.firing
    b.last_reason = HOLDS if holds else BELOW
    if b.firing:
        rop = rule.resolve_op
        resolved = rop(compared, rule.resolve_threshold) if rop is not None else not holds
        return holds, resolved
    return holds, False


def _compared(b: Binding, comparison: Comparison, deploy: DeployState | None) -> bool:
    """A ``compare`` rule holds once its test of this deploy says ``worse``."""
    if deploy is None or comparison.deploy_id != deploy.deploy_id:
        b.last_reason = NOT_STARTED
        return False
    verdict = b.last_reason = comparison.verdict
    return verdict == "worse"


def compare_reason(comparison: Comparison) -> str:
    """``error rate worse than stable (errors >= 2x at 99% confidence; e-value 143 ...)``."""
    found = comparison.test.evidence(comparison.state)  # type: ignore[arg-type]
    rule = comparison.rule
    return (
        f"{rule.label} {found.verdict.replace('_', ' ')} than {comparison.against} ({found.effect};"
        f" e-value {found.e_value_worse:.3g} after {found.updates} updates)"
    )


def compare_evidence(b: Binding) -> dict[str, Any]:
    """The numbers behind a ``compare`` decision: the test's evidence, and where it ran."""
    assert b.comparison is not None  # noqa: S101 - only called for compare rules
    return {
        "metric": b.rule.spec.metric,
        "region": b.series.region or None,
        "cohort": b.series.cohort or None,
        "baseline_kind": "before" if b.comparison.before else "stable",
        "statistics": b.comparison.evidence(),
    }


def _relative(rule: CompiledRule, observed: float, base: float) -> str:
    cond = rule.baseline
    assert cond is not None  # noqa: S101
    delta = observed - base if cond.increase is not None else base - observed
    verb = "increased" if cond.increase is not None else "dropped"
    if rule.unit == "%":
        change = f"{delta / base * 100:+.0f}%" if base > 0 else "from zero"
        limit = f"{rule.op_text} {rule.threshold * 100:.0f}%"
    elif rule.unit == "pp":
        change = f"{delta * 100:.1f}pp"
        limit = f"{rule.op_text} {rule.threshold * 100:.3g}pp"
    else:
        change, limit = rule.format(delta), f"{rule.op_text} {rule.format(rule.threshold)}"
    source = "pre-deploy baseline" if cond.baseline == "pre_deploy" else f"{cond.baseline} cohort"
    return f"{verb} {change} vs {source} {rule.format(base)} ({limit})"


def reason_text(b: Binding, context_baseline: float | None) -> str:
    """``error rate 8.3% over 2m > 5% (baseline 0.4%)``."""
    rule = b.rule
    observed = b.last_observed or 0.0
    head = f"{rule.label} {rule.format(observed)} over {format_duration(rule.spec.window)}"
    if rule.baseline is not None and b.last_baseline is not None:
        return f"{head} {_relative(rule, observed, b.last_baseline)}"
    text = f"{head} {rule.op_text} {rule.format(rule.threshold)}"
    if context_baseline is not None:
        text += f" (baseline {rule.format(context_baseline)})"
    return text


def _round(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.6g}")


def evidence(b: Binding, context_baseline: float | None) -> dict[str, Any]:
    """The numbers behind a decision."""
    rule = b.rule
    out: dict[str, Any] = {
        "metric": rule.spec.metric,
        "aggregate": rule.aggregate,
        "observed": _round(b.last_observed),
        "threshold": rule.threshold,
        "comparison": rule.op_text,
        "baseline": _round(b.last_baseline if rule.baseline is not None else context_baseline),
        "window_s": rule.spec.window // 1000,
        "samples": b.last_samples,
        "region": b.series.region or None,
        "cohort": b.series.cohort or None,
    }
    if rule.baseline is not None:
        out["baseline_kind"] = rule.baseline.baseline
        out["change"] = "increase" if rule.baseline.increase is not None else "drop"
    if b.last_volume is not None:
        out["volume"] = b.last_volume
    return out


def resolved_decision(
    b: Binding, st: ServiceState, deploy: DeployState | None, now: int
) -> Decision:
    """The ``state="resolved"`` decision of a notify rule that stopped firing."""
    rule = b.rule
    observed = rule.format(b.last_observed or 0.0)
    reason = f"resolved: {rule.label} {observed} over {format_duration(rule.spec.window)}"
    return Decision(
        at_ms=now,
        rule=rule.name,
        action="notify",
        severity=rule.severity,  # type: ignore[arg-type]
        service=st.service,
        environment=st.environment,
        deploy=deploy.info() if deploy is not None else None,
        regions=(b.series.region,) if b.series.region else (),
        reason=reason,
        evidence=evidence(b, None),
        state="resolved",
        dry_run=rule.spec.dry_run,
        labels={k: v for k, v in (("region", b.series.region), ("cohort", b.series.cohort)) if v},
    )

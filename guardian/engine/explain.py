"""Why each candidate rule did or did not fire for a deploy, as plain data.

``explain_deploy`` reads what each rule binding last saw (observed value,
baseline, samples, volume) and words why it is or is not firing, e.g.
``min_samples 5 not reached (3)``. The result is JSON-ready so
``guardian replay --explain`` and the HTTP API can print it as they like.

Limits: bindings keep only their latest evaluation, so an explanation says
where each rule stands now, not its full history; the deploy's incident list
holds every firing that joined its rollback.
"""

from __future__ import annotations

from typing import Any

from guardian.engine.evaluate import (
    BELOW,
    FEW_SAMPLES,
    HOLDS,
    LOW_VOLUME,
    NO_BASELINE,
    NO_DATA,
    NOISE,
    format_duration,
)
from guardian.engine.rules.compiled import CompiledRule
from guardian.engine.state import Binding, DeployState, ServiceState
from guardian.wire.records import format_time


def why(b: Binding) -> str:  # noqa: PLR0911 - one sentence per reason
    """One sentence on where a rule stands on one series."""
    rule = b.rule
    spec = rule.spec
    reason = b.last_reason
    if b.firing:
        return "fired"
    if b.comparison is not None:
        return _compared(b)
    if reason == FEW_SAMPLES:
        return f"min_samples {spec.min_samples} not reached ({b.last_samples})"
    if reason == LOW_VOLUME and spec.min_volume is not None:
        volume = b.last_volume or 0.0
        return (
            f"min_volume {spec.min_volume.at_least:g} {spec.min_volume.metric} "
            f"not reached ({volume:g})"
        )
    if reason == NO_DATA:
        return "no data in the window"
    if reason == NO_BASELINE and rule.baseline is not None:
        return (
            f"no {rule.baseline.baseline} baseline data "
            "(relative comparisons do not fire without a baseline)"
        )
    if reason == NOISE and rule.baseline is not None:
        return f"change within the noise floor (min_delta {rule.format(rule.baseline.min_delta)})"
    observed = rule.format(b.last_observed) if b.last_observed is not None else "n/a"
    if reason == BELOW:
        return f"{rule.label} {observed}: condition {rule.op_text} {_threshold(rule)} not met"
    if reason == HOLDS and b.since_ms is not None:
        since = format_time(b.since_ms)
        return f"condition holds since {since}; needs for {format_duration(rule.for_ms)}"
    return reason


def _compared(b: Binding) -> str:
    comparison = b.comparison
    assert comparison is not None  # noqa: S101 - only called for compare rules
    if b.last_reason not in ("worse", "not_worse", "inconclusive"):
        return b.last_reason
    found = comparison.test.evidence(comparison.state)  # type: ignore[arg-type]
    return (
        f"{found.verdict.replace('_', ' ')} vs {comparison.against} ({found.effect}):"
        f" e-value {found.e_value_worse:.3g} for worse, {found.e_value_not_worse:.3g}"
        f" for not worse, after {found.updates} updates"
    )


def _threshold(rule: CompiledRule) -> str:
    if rule.baseline is not None and rule.unit == "%":
        return f"{rule.threshold * 100:g}% vs {rule.baseline.baseline}"
    if rule.unit == "pp":
        return f"{rule.threshold * 100:g}pp vs {rule.baseline.baseline if rule.baseline else ''}"
    return rule.format(rule.threshold)


def _binding_row(b: Binding) -> dict[str, Any]:
    rule = b.rule
    return {
        "rule": rule.name,
        "origin": rule.origin,
        "action": rule.action,
        "region": b.series.region or None,
        "cohort": b.series.cohort or None,
        "state": "firing" if b.firing else ("pending" if b.since_ms is not None else "ok"),
        "why": why(b),
        "observed": b.last_observed,
        "threshold": rule.threshold,
        "baseline": b.last_baseline,
        "samples": b.last_samples,
        "volume": b.last_volume,
        "window_s": rule.spec.window // 1000,
        "for_s": rule.for_ms // 1000,
        **({"statistics": b.comparison.evidence()} if b.comparison is not None else {}),
    }


def explain_deploy(
    st: ServiceState, deploy: DeployState, check_rules: list[CompiledRule]
) -> dict[str, Any]:
    """The whole explanation of one deploy."""
    rows = []
    for series in st.series.values():
        for b in series.bindings:
            rule = b.rule
            if rule.scope == "during_deploy" and not rule.matches_deploy(
                deploy.strategy, deploy.component
            ):
                continue
            rows.append(_binding_row(b))
    checks = [
        {
            "rule": r.name,
            "origin": r.origin,
            "action": r.action,
            "why": "fires on a failing check event; none matched"
            if not any(e.get("rule") == r.name for e in deploy.incident)
            else "fired",
        }
        for r in check_rules
        if r.service(st.service) and r.environment(st.environment)
    ]
    info = deploy.info()
    return {
        "deploy_id": deploy.deploy_id,
        "service": deploy.service,
        "environment": deploy.environment,
        "version": info.version,
        "strategy": info.strategy,
        "status": deploy.status,
        "started_at": format_time(deploy.started_at_ms),
        "regions": list(info.regions),
        "rollback": deploy.rollback.to_dict() if deploy.rollback is not None else None,
        "incident": [{**e, "at": format_time(e["at_ms"])} for e in deploy.incident],
        "rules": rows,
        "checks": checks,
    }

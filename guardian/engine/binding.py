"""Which rules watch a series, and the windows they read: bindings built once per series.

A series is matched against the rules of its service when first seen (and
again on a hot reload, keeping windows whose key did not change and the
progress of rules that kept their name). Reference cohorts (stable/baseline)
also keep the windows canary rules compare against.

Limits: part of the engine's internals, split out of ``engine.py`` to keep
modules small.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from guardian.engine.rules.compiled import CompiledRule, MeasureKey
from guardian.engine.state import Binding, Series, ServiceState

if TYPE_CHECKING:
    from guardian.engine.engine import Engine

# The stable and baseline cohorts both serve as the reference a canary is judged against.
_REFERENCE = {"stable": "reference", "baseline": "reference"}


def bind_series(
    engine: Engine,
    st: ServiceState,
    series: Series,
    plan: tuple[list[CompiledRule], dict[MeasureKey, int]],
    kept: dict[Any, Any],
    old: dict[str, Binding],
) -> None:
    """Attach every rule of ``plan`` that watches ``series``, reusing ``kept`` windows."""
    rules, measures = plan
    region, cohort = series.region, series.cohort
    for r in rules:
        if not r.region(region):
            continue
        if r.cohort(cohort):
            for key in (r.agg_key, r.volume_key):
                if key is not None and key in kept:
                    series.adopt(key, kept[key])
            agg = series.aggregate(r.agg_key, engine._ring(r.agg_key))  # type: ignore[arg-type]
            vol = (
                series.aggregate(r.volume_key, engine._ring(r.volume_key)) if r.volume_key else None
            )
            b = old.get(r.name)
            if b is not None and b.agg is agg:
                b.rule, b.volume = r, vol
            else:
                b = Binding(r, series, agg, vol)
            series.bindings.append(b)
            if r.spec.no_data.policy == "alert":
                engine._push(st.watermark + r.spec.no_data.after, "nodata", b, st)
        elif r.baseline is not None and _REFERENCE.get(r.baseline.baseline) == _REFERENCE.get(
            cohort, "-"
        ):  # a reference cohort for canary rules: keep the same window for comparison
            series.aggregate(r.agg_key)  # type: ignore[arg-type]
    series.buckets = st.region_buckets(region, measures)

"""Rules compiled for the hot path: label matchers as closures, measures as plain keys.

A ``CompiledRule`` answers, without touching pydantic, whether it watches a
series (``matches_series``) or a deploy (``matches_deploy``), which sliding
aggregate it reads (``agg_key``), and how to compare and describe a value.
The engine compiles a ``RuleSet`` once per load or hot reload.

Limits: label matchers are static per series, so a series is matched once
when first seen; strategy and component come from the deploy and are checked
per evaluation.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import translate

from guardian.engine.rules.loader import RuleSet
from guardian.engine.rules.model import BaselineCondition, Rule
from guardian.stats import RateTest, ShiftTest

Matcher = Callable[[str], bool]
# (numerator key, denominator key or None, default numerator, window ms, clipped to deploy start)
AggKey = tuple[str, str | None, float | None, int, bool]
# (numerator key, denominator key or None, default numerator)
MeasureKey = tuple[str, str | None, float | None]
StatTest = RateTest | ShiftTest
# With only ``plus`` given, a rate rule's ratio is barely above 1: the floor decides.
_RATIO_FLOOR = 1.01

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_PERCENT_METRICS = ("error_rate", "availability", "utilization", "ratio", "percent")


def _always(_: str) -> bool:
    return True


def compile_patterns(patterns: tuple[str, ...] | None) -> Matcher:
    """``("checkout*", "!checkout-beta")`` → a predicate on one label value."""
    if patterns is None:
        return _always
    positive = [p for p in patterns if not p.startswith("!")]
    negative = [p[1:] for p in patterns if p.startswith("!")]

    def regex(items: list[str]) -> re.Pattern[str] | None:
        if not items:
            return None
        return re.compile("|".join(f"(?:{translate(p)})" for p in items))

    pos, neg = regex(positive), regex(negative)
    if neg is None and pos is not None and all(not set("*?[") & set(p) for p in positive):
        exact = frozenset(positive)
        return exact.__contains__

    def match(value: str) -> bool:
        if pos is not None and pos.match(value) is None:
            return False
        return neg is None or neg.match(value) is None

    return match


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One rule ready for evaluation."""

    spec: Rule
    name: str
    origin: str
    scope: str
    action: str
    severity: str
    service: Matcher
    environment: Matcher
    region: Matcher
    cohort: Matcher
    strategy: Matcher
    component: Matcher
    measure: MeasureKey | None
    aggregate: str
    agg_key: AggKey | None
    volume_key: AggKey | None
    volume_from_den: bool
    op: Callable[[float, float], bool] | None
    op_text: str
    threshold: float
    unit: str
    baseline: BaselineCondition | None
    resolve_op: Callable[[float, float], bool] | None
    resolve_threshold: float
    for_ms: int
    bake_ms: int | None
    percent: bool
    # Flattened from ``spec`` for the hot path.
    clipped: bool  # windows start no earlier than the deploy
    window_ms: int
    min_samples: int
    min_volume: float  # 0 when the rule sets none
    # Rules that do not guard a deploy are judged at most this often in event time (window/10),
    # like a Prometheus evaluation interval; deploy rules are judged on every sample.
    eval_every_ms: int
    reached_only: bool
    # ``compare`` rules: the anytime-valid test (shared by every series the rule judges).
    stat_test: StatTest | None = None

    def matches_series(self, service: str, environment: str, region: str, cohort: str) -> bool:
        """Whether this rule watches the series with these labels."""
        return (
            self.service(service)
            and self.environment(environment)
            and self.region(region)
            and self.cohort(cohort)
        )

    def matches_deploy(self, strategy: str, component: str) -> bool:
        """Whether this rule cares about a deploy of this strategy and component."""
        return self.strategy(strategy) and self.component(component)

    def format(self, value: float) -> str:
        """A value as an operator reads it: ``8.3%`` or ``412ms``."""
        if self.percent:
            return f"{value * 100:.3g}%"
        if self.unit == "ms" or (self.spec.metric or "").endswith("_ms"):
            return f"{value:.4g}ms"
        return f"{value:.4g}"

    @property
    def label(self) -> str:
        """The metric's name as words: ``error rate``, ``latency p95``."""
        metric = self.spec.metric or "check"
        metric = metric.removesuffix("_ms")
        return metric.replace("_", " ")


def _measure(rule: Rule) -> tuple[MeasureKey | None, str]:
    if rule.metric is None:
        return None, ""
    if rule.metric == "error_rate" and rule.numerator is None:
        return ("errors", "requests", 0.0), "ratio"
    aggregate = rule.aggregate or ("ratio" if rule.denominator else "mean")
    if aggregate == "ratio":
        return (rule.numerator or rule.metric, rule.denominator, 0.0), aggregate
    return (rule.metric, None, None), aggregate


def _for_ms(rule: Rule, metric: bool) -> int:
    """How long a condition must hold: default the window; ``compare`` rules act at once."""
    if rule.for_ is not None:
        return rule.for_
    return rule.window if metric and rule.compare is None else 0


def build_test(rule: Rule) -> StatTest | None:
    """The stats test a ``compare`` rule asks for (None for other rules)."""
    compare = rule.compare
    if compare is None:
        return None
    if rule.is_rate:
        return RateTest(
            min_ratio=compare.at_least or _RATIO_FLOOR,
            min_increase=compare.plus[0] if compare.plus is not None else 0.0,
            confidence=compare.confidence,
        )
    assert compare.plus is not None  # noqa: S101 - the model requires it for gauges
    return ShiftTest(
        min_shift=compare.plus[0],
        tolerance=min(0.05, compare.plus[0] / 4),
        confidence=compare.confidence,
        min_requests=compare.min_requests,
    )


def compile_rule(rule: Rule, origin: str, bake_default: int) -> CompiledRule:
    """Compile one validated rule."""
    measure, aggregate = _measure(rule)
    clipped = rule.applies == "during_deploy"
    agg_key: AggKey | None = None
    volume_key: AggKey | None = None
    volume_from_den = False
    if measure is not None:
        agg_key = (*measure, rule.window, clipped)
        if rule.min_volume is not None:
            if measure[1] == rule.min_volume.metric:
                volume_from_den = True
            else:
                volume_key = (rule.min_volume.metric, None, None, rule.window, clipped)
    op, op_text, threshold, unit = None, "", 0.0, ""
    baseline: BaselineCondition | None = None
    if isinstance(rule.condition, BaselineCondition):
        baseline = rule.condition
        op_text, threshold, unit = rule.condition.increase or rule.condition.drop  # type: ignore[misc]
        op = OPERATORS[op_text]
    elif rule.condition is not None:
        op_text, threshold, unit = rule.condition
        op = OPERATORS[op_text]
    resolve_op, resolve_threshold = None, 0.0
    if rule.resolve is not None:
        resolve_op, resolve_threshold = OPERATORS[rule.resolve[0]], rule.resolve[1]
    metric = rule.metric or ""
    percent = unit == "pp" or (unit == "%" and baseline is None)
    percent = percent or any(word in metric for word in _PERCENT_METRICS)
    m = rule.match
    return CompiledRule(
        spec=rule,
        name=rule.name,
        origin=origin,
        scope=rule.applies,
        action=rule.action,
        severity=rule.severity or ("critical" if rule.action == "rollback" else "warning"),
        service=compile_patterns(m.service),
        environment=compile_patterns(m.environment),
        region=compile_patterns(m.region),
        cohort=compile_patterns(m.cohort),
        strategy=compile_patterns(m.strategy),
        component=compile_patterns(m.component),
        measure=measure,
        aggregate=aggregate,
        agg_key=agg_key,
        volume_key=volume_key,
        volume_from_den=volume_from_den,
        op=op,
        op_text=op_text,
        threshold=threshold,
        unit=unit,
        baseline=baseline,
        resolve_op=resolve_op,
        resolve_threshold=resolve_threshold,
        for_ms=_for_ms(rule, measure is not None),
        bake_ms=rule.bake_time if rule.bake_time is not None else bake_default,
        percent=percent,
        clipped=clipped,
        window_ms=rule.window,
        min_samples=rule.min_samples,
        min_volume=rule.min_volume.at_least if rule.min_volume is not None else 0.0,
        eval_every_ms=0 if clipped else rule.window // 10,
        reached_only=rule.regions == "reached",
        stat_test=build_test(rule),
    )


def compile_rules(rules: RuleSet) -> list[CompiledRule]:
    """Compile a whole pack in file order."""
    bake = rules.settings.bake_time
    return [compile_rule(r, rules.origins.get(r.name, ""), bake) for r in rules.rules]

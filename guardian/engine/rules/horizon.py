"""How far back in event history the rules can look: where a fresh start may begin.

A consumer group's first start reads input from the earliest retained
record. Records older than this horizon cannot change any decision the rules
can still make (every window, ``for``, bake time, rollback timeout and
pre-deploy baseline lies inside it), so the source passes over them.
"""

from __future__ import annotations

from guardian.engine.rules.loader import RuleSet
from guardian.engine.rules.model import BaselineCondition


def history_horizon_ms(rules: RuleSet, allowed_lateness_ms: int) -> int:
    """The longest span any rule or pack setting looks back, plus lateness.

    A deploy lives at most the longest bake time or rollback timeout (or rule
    span) after its last step; its pre-deploy baseline lies before its start.
    """
    settings = rules.settings
    lifetime = [
        settings.bake_time,
        settings.rollback_timeout,
        *settings.rollback_timeout_by_strategy.values(),
    ]
    baseline = 0
    for rule in rules.rules:
        lifetime.append(rule.window + (rule.for_ or 0))
        if rule.bake_time is not None:
            lifetime.append(rule.bake_time)
        if rule.no_data.policy == "alert":
            lifetime.append(rule.no_data.after)
        if rule.check is not None and rule.check.within is not None:
            lifetime.append(rule.check.within)
        if isinstance(rule.condition, BaselineCondition):
            baseline = max(baseline, rule.condition.baseline_window)
    return max(lifetime) + baseline + allowed_lateness_ms

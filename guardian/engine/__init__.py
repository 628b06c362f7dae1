"""The pure rule engine: events and event time in, decisions out. No I/O, no clock."""

from guardian.engine.engine import Engine, EngineStats
from guardian.engine.rules.loader import RuleProblem, RuleSet, load_rules, parse_rules

__all__ = ["Engine", "EngineStats", "RuleProblem", "RuleSet", "load_rules", "parse_rules"]

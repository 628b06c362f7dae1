"""The pure rule engine: events and event time in, decisions out. No I/O, no clock."""

from guardian.engine.engine import Engine, EngineStats
from guardian.engine.rules.loader import RuleProblem, RuleSet, load_rules, parse_rules
from guardian.engine.snapshot import (
    ServiceSnapshot,
    SnapshotError,
    decode_snapshot,
    encode_snapshot,
)

__all__ = [
    "Engine",
    "EngineStats",
    "RuleProblem",
    "RuleSet",
    "ServiceSnapshot",
    "SnapshotError",
    "decode_snapshot",
    "encode_snapshot",
    "load_rules",
    "parse_rules",
]

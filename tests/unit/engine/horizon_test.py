"""The history horizon: the longest span the rules look back, where a fresh start may begin."""

from __future__ import annotations

from pathlib import Path

from guardian.engine import load_rules, parse_rules
from guardian.engine.rules.horizon import history_horizon_ms

RULES = Path(__file__).resolve().parents[3] / "rules"
MINUTE = 60_000


def test_default_pack_reaches_back_bake_time_plus_baseline_plus_lateness() -> None:
    """30 m bake time (longest life) + 30 m pre-deploy baseline + 1 m lateness."""
    assert history_horizon_ms(load_rules(RULES), MINUTE) == 61 * MINUTE


def test_the_longest_rule_span_counts() -> None:
    """A rule's window plus ``for``, no-data silence or check window can outlast the settings."""
    pack = parse_rules(
        """
settings: {bake_time: 5m, rollback_timeout: 2m}
rules:
  - name: slow-burn
    metric: error_rate
    window: 2h
    for: 30m
    condition: "> 1%"
    action: notify
  - name: silent
    metric: requests
    window: 1m
    condition: "< 1"
    no_data: {policy: alert, after: 3h}
    applies: always
    action: notify
"""
    )
    assert history_horizon_ms(pack, 0) == 180 * MINUTE


def test_baseline_window_is_added_to_the_deploy_lifetime() -> None:
    """A deploy judged at the end of its life still needs the baseline from before its start."""
    pack = parse_rules(
        """
settings: {bake_time: 10m, rollback_timeout: 10m}
rules:
  - name: latency-up
    metric: latency_p95_ms
    window: 1m
    condition: {increase: ">= 50%", baseline: pre_deploy, baseline_window: 45m}
    action: rollback
"""
    )
    assert history_horizon_ms(pack, MINUTE) == (10 + 45 + 1) * MINUTE

"""The rule file format: durations, quantities, comparisons and rule coherence."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from guardian.engine.rules.model import (
    Rule,
    parse_comparison,
    parse_duration_ms,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("30s", 30_000),
        ("5m", 300_000),
        ("24h", 86_400_000),
        ("1m30s", 90_000),
        ("250ms", 250),
        ("1d", 86_400_000),
        (2, 2000),
        (0.5, 500),
    ],
)
def test_durations(text: str | float, ms: int) -> None:
    """Durations read as operators write them, bare numbers being seconds."""
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("bad", ["5x", "", "-5s", True, -1, None, "m5"])
def test_bad_durations(bad: object) -> None:
    """Anything that is not a duration is refused with a hint."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration_ms(bad)


@pytest.mark.parametrize(
    ("text", "value", "unit"),
    [
        ("5%", 0.05, "%"),
        ("0.05", 0.05, ""),
        ("5pp", 0.05, "pp"),
        ("200ms", 200.0, "ms"),
        ("2s", 2000.0, "ms"),
        (3, 3.0, ""),
        ("-1", -1.0, ""),
    ],
)
def test_quantities(text: str | float, value: float, unit: str) -> None:
    """Percentages, percentage points and times normalise to plain floats."""
    got, got_unit = parse_quantity(text)
    assert got == pytest.approx(value)
    assert got_unit == unit


@pytest.mark.parametrize("bad", ["five", True, None, "5 apples"])
def test_bad_quantities(bad: object) -> None:
    """Non-numbers are refused."""
    with pytest.raises(ValueError, match="number"):
        parse_quantity(bad)


@pytest.mark.parametrize(
    ("text", "op", "value"),
    [("> 5%", ">", 0.05), (">=100%", ">=", 1.0), ("< 200ms", "<", 200.0), ("<= 3", "<=", 3.0)],
)
def test_comparisons(text: str, op: str, value: float) -> None:
    """Comparisons read aloud split into operator and threshold."""
    got = parse_comparison(text)
    assert got[0] == op
    assert got[1] == pytest.approx(value)


@pytest.mark.parametrize("bad", ["5%", "=> 5", 5])
def test_bad_comparisons(bad: object) -> None:
    """A threshold without an operator is refused."""
    with pytest.raises(ValueError, match="comparison"):
        parse_comparison(bad)


BASE = {"name": "r", "metric": "error_rate", "condition": "> 5%", "action": "rollback"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"check": {"names": ["x"]}}, "either a 'metric' or a 'check'"),
        ({"condition": None}, "needs a 'condition'"),
        ({"applies": "always"}, "needs a deploy"),
        ({"metric": "x", "aggregate": "ratio"}, "numerator"),
        ({"condition": {"increase": "> 5%", "drop": "> 5%"}}, "exactly one"),
        ({"aggregate": "median"}, "pattern"),
        ({"match": {"service": []}}, "label pattern"),
        ({"colour": "red"}, "Extra inputs"),
    ],
)
def test_incoherent_rules(change: dict[str, object], message: str) -> None:
    """Rules that cannot mean anything are refused with the reason."""
    with pytest.raises(ValidationError, match=message):
        Rule.model_validate({**BASE, **change})


def test_check_rule_takes_no_condition() -> None:
    """A check rule with a metric condition is refused."""
    with pytest.raises(ValidationError, match="no 'condition'"):
        Rule.model_validate(
            {"name": "c", "check": {}, "condition": "> 1", "action": "notify", "applies": "always"}
        )


def test_for_is_spelled_for() -> None:
    """``for`` is the YAML key even though Python calls the field ``for_``."""
    rule = Rule.model_validate({**BASE, "for": "2m", "window": "1m"})
    assert rule.for_ == 120_000
    assert rule.window == 60_000

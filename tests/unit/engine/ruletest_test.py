"""Rule unit tests: the compact series notation, diffs, and the default pack's own tests."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from guardian.engine import load_rules
from guardian.engine.ruletest import (
    RuleTestCase,
    RuleTestFile,
    build_events,
    expand,
    offset_ms,
    run_case,
    run_file,
)
from guardian.wire.events import DeployEvent
from tests.unit.engine.builders import ERROR_RULE, rules

RULES_DIR = Path(__file__).resolve().parents[3] / "rules"
TEST_FILES = sorted((RULES_DIR / "tests").glob("*_test.yaml"))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("20x3", [20.0, 20.0, 20.0]),
        ("1+2x3", [1.0, 3.0, 5.0]),
        ("10-1x2", [10.0, 9.0]),
        ("1 _x2 4", [1.0, None, None, 4.0]),
        (7, [7.0]),
        ([1.0, None], [1.0, None]),
    ],
)
def test_expand(spec: str | float | list[float | None], expected: list[float | None]) -> None:
    """The series notation expands like promtool's, n samples per ``xn``."""
    assert expand(spec, random.Random(1)) == expected


def test_random_tokens_are_seeded_and_bounded() -> None:
    """Poisson and jitter tokens are reproducible and stay in range."""
    a = expand("poisson(2)x100 100~10%x100", random.Random(5))
    assert a == expand("poisson(2)x100 100~10%x100", random.Random(5))
    assert all(v is not None and v >= 0 and v == int(v) for v in a[:100])
    assert all(v is not None and 90 <= v <= 110 for v in a[100:])


def test_bad_token() -> None:
    """An unreadable token is an error naming it."""
    with pytest.raises(ValueError, match="'2y'"):
        expand("2y", random.Random(1))


def test_offsets() -> None:
    """Test times are signed offsets."""
    assert (offset_ms("-30m"), offset_ms("90s"), offset_ms(2)) == (-1_800_000, 90_000, 2000)


def test_failing_case_reports_a_readable_diff() -> None:
    """Missing and unexpected decisions are both listed, with what was decided."""
    case = RuleTestCase.model_validate(
        {
            "name": "wrong",
            "defaults": {"service": "s", "environment": "production", "region": "r"},
            "deploys": [{"type": "started", "deploy_id": "d1", "at": 0}],
            "series": [{"series": {}, "values": {"requests": "20x40", "errors": "5x40"}}],
            "expect": [{"rule": "other", "action": "rollback"}],
        }
    )
    result = run_case(rules(ERROR_RULE), case)
    assert not result.ok
    assert result.problems[0].startswith("- expected 1× {'rule': 'other'")
    assert result.problems[1].startswith("+ unexpected errors rollback firing at 12s")
    events = build_events(case)
    assert isinstance(events[0], DeployEvent)  # deploys sort before samples at the same time


def test_expectation_fields_filter() -> None:
    """at/at_before/at_after/deploy_id/dry_run must all agree for a match."""
    base = {
        "name": "x",
        "defaults": {"service": "s", "environment": "production", "region": "r"},
        "deploys": [{"type": "started", "deploy_id": "d1", "at": 0}],
        "checks": [{"check": "c", "status": "pass", "at": 1}],
        "series": [{"series": {}, "values": {"requests": "20x40", "errors": "5x40"}}],
    }
    good = {
        "rule": "err*",
        "at": "12s",
        "at_after": 10,
        "at_before": "13s",
        "deploy_id": "d1",
        "dry_run": False,
        "action": "rollback",
    }
    assert run_case(rules(ERROR_RULE), RuleTestCase.model_validate({**base, "expect": [good]})).ok
    for change in (
        {"at": 11},
        {"at_before": 11},
        {"at_after": 13},
        {"deploy_id": "d2"},
        {"dry_run": True},
        {"action": "pause"},
        {"state": "resolved"},
    ):
        case = RuleTestCase.model_validate({**base, "expect": [{**good, **change}]})
        assert not run_case(rules(ERROR_RULE), case).ok, change


@pytest.mark.parametrize("path", TEST_FILES, ids=[p.name for p in TEST_FILES])
def test_default_pack_rule_tests_pass(path: Path) -> None:
    """Every shipped rule test (firing and non-firing side) passes against the shipped rules."""
    spec = RuleTestFile.model_validate(YAML(typ="safe").load(path.read_text()))
    pack = load_rules(*[path.parent / f for f in spec.rule_files])
    failures = [r for r in run_file(pack, spec) if not r.ok]
    assert not failures, "\n".join(f"{r.name}:\n" + "\n".join(r.problems) for r in failures)


def test_every_default_rule_is_tested_firing() -> None:
    """Each rule of the default pack has at least one test expecting it to fire."""
    pack = load_rules(RULES_DIR)
    expected: set[str] = set()
    for path in TEST_FILES:
        spec = RuleTestFile.model_validate(YAML(typ="safe").load(path.read_text()))
        expected |= {e.rule for case in spec.tests for e in case.expect}
    assert {r.name for r in pack.rules} - expected == set()

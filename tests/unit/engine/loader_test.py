"""Loading rule files: every problem located by file, line, column and field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardian.engine import load_rules, parse_rules
from guardian.engine.rules.loader import RuleError, RuleSet, rule_files
from guardian.errors import ConfigError

GOOD = """
rules:
  - name: a
    metric: error_rate
    condition: "> 5%"
    action: rollback
"""

BAD = """rules:
  - name: ok
    metric: error_rate
    condition: "> 5%"
    action: rollback
  - name: broken
    metric: latency
    condition:
      increse: ">= 100%"
    window: 5x
    action: rollback
"""


def test_problems_have_file_line_column_and_path() -> None:
    """Each problem names where it is and which field, like a compiler."""
    with pytest.raises(RuleError) as info:
        parse_rules(BAD, "rules/canary.yaml")
    lines = str(info.value).splitlines()
    assert "rules/canary.yaml:10:5: rules[1].window: expected a duration" in lines[0]
    assert (
        lines[1]
        == "rules/canary.yaml:9:7: rules[1].condition.increse: Extra inputs are not permitted"
    )
    assert isinstance(info.value, ConfigError)
    assert len(info.value.problems) == 2


def test_missing_field_points_at_the_rule() -> None:
    """A missing required field is reported at the rule that lacks it."""
    with pytest.raises(RuleError) as info:
        parse_rules("rules:\n  - name: x\n    metric: m\n    condition: '> 1'\n", "f.yaml")
    assert str(info.value.problems[0]) == "f.yaml:2:5: rules[0].action: Field required"


def test_yaml_syntax_error_is_located() -> None:
    """Broken YAML is a problem with a position too."""
    with pytest.raises(RuleError) as info:
        parse_rules("rules: [\n  - {", "f.yaml")
    assert info.value.problems[0].file == "f.yaml"
    assert info.value.problems[0].line >= 1


def test_empty_file_is_an_empty_pack() -> None:
    """An empty file holds no rules and is valid."""
    assert len(parse_rules("", "f.yaml")) == 0


def test_directory_skips_tests_and_finds_duplicates(tmp_path: Path) -> None:
    """Rule directories ignore tests/ and *_test.yaml; duplicate names across files fail."""
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "x.yaml").write_text("not: [valid")
    (tmp_path / "c_test.yaml").write_text("not: [valid")
    (tmp_path / "notes.txt").write_text("ignored")
    assert [p.name for p in rule_files(tmp_path)] == ["a.yaml"]
    assert load_rules(tmp_path).origins == {"a": f"{tmp_path / 'a.yaml'}:3"}
    (tmp_path / "b.yml").write_text(GOOD)
    with pytest.raises(RuleError, match="duplicate rule name 'a'"):
        load_rules(tmp_path)


def test_conflicting_settings_are_refused() -> None:
    """Two files may not set different pack settings."""
    from guardian.engine.rules.loader import build_ruleset

    with pytest.raises(RuleError, match="conflicts with settings"):
        build_ruleset(
            [("a.yaml", "settings: {bake_time: 5m}"), ("b.yaml", "settings: {bake_time: 6m}")]
        )
    same = build_ruleset(
        [("a.yaml", "settings: {bake_time: 5m}"), ("b.yaml", "settings: {bake_time: 5m}")]
    )
    assert same.settings.bake_time == 300_000


def test_missing_path_and_unreadable_file(tmp_path: Path) -> None:
    """A missing path or a non-UTF-8 file is a config error, not a crash."""
    with pytest.raises(ConfigError, match="no such rule file"):
        load_rules(tmp_path / "nope")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(RuleError):
        load_rules(bad)


def test_default_pack_loads() -> None:
    """The shipped pack is valid and has the pack settings."""
    pack = load_rules(Path(__file__).resolve().parents[3] / "rules")
    assert isinstance(pack, RuleSet)
    assert len(pack) >= 15
    assert pack.settings.bake_time == 30 * 60_000

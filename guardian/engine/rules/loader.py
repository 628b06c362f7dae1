"""Rule files from YAML text or disk into a validated ``RuleSet``, with line numbers.

``parse_rules`` turns text into rules (pure); ``load_rules`` reads a file or a
directory of ``*.yaml``/``*.yml`` (skipping ``tests/`` folders and
``*_test.yaml``) and parses each. Every problem in every file is collected and
raised at once as a ``ConfigError`` whose message has one
``file:line:column: field.path: message`` line per problem, so an operator
fixes them all in one pass. Line numbers come from ruamel.yaml's round-trip
loader, which remembers where each node was written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from guardian.engine.rules.model import Rule, RuleFile, Settings
from guardian.errors import ConfigError
from guardian.yamldoc import YamlProblem, YamlProblems, parse_located

# One thing wrong in a rule file, located for an editor.
RuleProblem = YamlProblem


class RuleError(ConfigError):
    """Rule files are invalid; ``problems`` lists every one."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A validated rule pack: rules in file order, pack settings, where each rule came from."""

    rules: tuple[Rule, ...] = ()
    settings: Settings = field(default_factory=Settings)
    origins: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rules)


def _clean_loc(loc: Sequence[int | str]) -> list[int | str]:
    """Drop the union tags and validator names pydantic adds to error locations."""
    out: list[int | str] = []
    for part in loc:
        if isinstance(part, str) and ("[" in part or "-" in part):
            continue
        if out and out[-1] == "condition" and part in ("threshold", "baseline"):
            continue
        out.append(part)
    return out


def parse_rule_file(text: str, filename: str = "<rules>") -> tuple[RuleFile, dict[str, int]]:
    """Validate one rule file's text; return it and each rule's line. Raise ``RuleError``."""
    try:
        parsed, root = parse_located(RuleFile, text, filename, _clean_loc)
    except YamlProblems as exc:
        raise RuleError(exc.problems) from None
    lines: dict[str, int] = {}
    rules_node = root.get("rules") if isinstance(root, CommentedMap) else None
    for i, rule in enumerate(parsed.rules):
        if isinstance(rules_node, CommentedSeq):
            lines[rule.name] = rules_node.lc.item(i)[0] + 1
    return parsed, lines


def build_ruleset(files: Sequence[tuple[str, str]]) -> RuleSet:
    """Parse ``(filename, text)`` pairs into one pack; duplicate names across files are errors."""
    problems: list[RuleProblem] = []
    rules: list[Rule] = []
    origins: dict[str, str] = {}
    settings: Settings | None = None
    settings_from = ""
    for filename, text in files:
        try:
            parsed, lines = parse_rule_file(text, filename)
        except RuleError as exc:
            problems.extend(exc.problems)
            continue
        if parsed.settings is not None:
            if settings is not None and parsed.settings != settings:
                problems.append(
                    RuleProblem(
                        filename, 1, 1, "settings", f"conflicts with settings in {settings_from}"
                    )
                )
            settings, settings_from = parsed.settings, filename
        for rule in parsed.rules:
            where = f"{filename}:{lines.get(rule.name, 1)}"
            if rule.name in origins:
                problems.append(
                    RuleProblem(
                        filename,
                        lines.get(rule.name, 1),
                        1,
                        "name",
                        f"duplicate rule name {rule.name!r} "
                        f"(first defined at {origins[rule.name]})",
                    )
                )
                continue
            origins[rule.name] = where
            rules.append(rule)
    if problems:
        raise RuleError(problems)
    return RuleSet(tuple(rules), settings or Settings(), origins)


def parse_rules(text: str, filename: str = "<rules>") -> RuleSet:
    """Validate one rule file's text into a pack; raise ``RuleError`` listing every problem."""
    return build_ruleset([(filename, text)])


def rule_files(path: Path) -> list[Path]:
    """The rule files under ``path``: itself if a file, else ``*.yaml``/``*.yml`` minus tests."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ConfigError(f"{path}: no such rule file or directory")
    found = []
    for candidate in sorted(path.rglob("*")):
        if candidate.suffix not in (".yaml", ".yml") or not candidate.is_file():
            continue
        rel = candidate.relative_to(path)
        if "tests" in rel.parts[:-1] or candidate.stem.endswith("_test"):
            continue
        found.append(candidate)
    return found


def load_rules(*paths: Path) -> RuleSet:
    """Read and validate rule files or directories; raise ``RuleError`` listing every problem."""
    files: list[tuple[str, str]] = []
    for path in paths:
        for file in rule_files(Path(path)):
            try:
                files.append((str(file), file.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                raise RuleError([RuleProblem(str(file), 1, 1, "(file)", str(exc))]) from None
    return build_ruleset(files)

"""Unit tests for rules, in the spirit of ``promtool test rules`` (the runner, no I/O).

A test file names rule files and lists test cases. Each case is a timeline:
deploy and check events at given times, and metric series written compactly
(``"20x60"`` = 60 samples of 20, ``"1+2x3"`` = 1 3 5, ``"poisson(0.2)x600"``
= 600 seeded Poisson draws, ``"180~10%x600"`` = 180 ± 10% uniform jitter,
``"_x10"`` = 10 missing samples). The runner feeds the timeline through the
real ``Engine`` exactly as ``guardian replay`` does and compares decisions
with ``expect`` (rule, action, ``at`` / ``at_before`` / ``at_after``,
deploy_id, state, dry_run) or ``expect_none``.

Limits: pure; the CLI reads files and prints results. Times in a test are
offsets (``-30m``, ``90s``) from a fixed epoch so results are reproducible.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from guardian.engine.decision import Decision
from guardian.engine.engine import Engine
from guardian.engine.evaluate import format_duration
from guardian.engine.rules.loader import RuleSet
from guardian.engine.rules.model import parse_duration_ms
from guardian.wire.events import CheckEvent, DeployEvent, EventTime, InputEvent, MetricEvent

EPOCH_MS = 1_795_478_400_000  # 2026-11-24T00:00:00Z: test times are offsets from here
_TOKEN = re.compile(
    r"^(?:(?P<poisson>poisson\((?P<mean>[\d.]+)\))|(?P<gap>_)|"
    r"(?P<a>-?[\d.]+)(?:(?P<sign>[+-])(?P<b>[\d.]+)|~(?P<jit>[\d.]+)%)?)(?:x(?P<n>\d+))?$"
)


def offset_ms(value: object) -> int:
    """``"-30m"`` → -1800000; numbers are seconds."""
    if isinstance(value, str) and value.strip().startswith("-"):
        return -parse_duration_ms(value.strip()[1:])
    return parse_duration_ms(value)


def expand(spec: str | float | list[float | None], rng: random.Random) -> list[float | None]:
    """Expand a compact series notation into one value (or None) per sample."""
    if isinstance(spec, list):
        return list(spec)
    if isinstance(spec, int | float):
        return [float(spec)]
    out: list[float | None] = []
    for token in spec.split():
        m = _TOKEN.match(token)
        if m is None:
            raise ValueError(f"cannot read series token {token!r}")
        n = int(m["n"]) if m["n"] else 1
        for i in range(n):
            if m["gap"]:
                out.append(None)
            elif m["poisson"]:
                out.append(float(_poisson(float(m["mean"]), rng)))
            elif m["jit"]:
                a, jit = float(m["a"]), float(m["jit"]) / 100
                out.append(a * (1 + rng.uniform(-jit, jit)))
            else:
                step = float(m["b"] or 0) * (-1 if m["sign"] == "-" else 1)
                out.append(float(m["a"]) + step * i)
    return out


def _poisson(mean: float, rng: random.Random) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class SeriesInput(_Model):
    """A metric series: labels, first sample time, spacing and values per key."""

    series: dict[str, str]
    start: str | float = 0
    interval: str | float = "1s"
    values: dict[str, str | float | list[float | None]]


class Expectation(_Model):
    """One decision a test expects."""

    rule: str  # a rule name or glob
    action: str | None = None
    at: str | float | None = None
    at_before: str | float | None = None
    at_after: str | float | None = None
    deploy_id: str | None = None
    state: str = "firing"
    dry_run: bool | None = None
    count: int = 1


class RuleTestCase(_Model):
    """A timeline of events and the decisions it must (not) produce."""

    name: str
    defaults: dict[str, str] = Field(default_factory=dict)
    deploys: list[dict[str, Any]] = Field(default_factory=list)
    checks: list[dict[str, Any]] = Field(default_factory=list)
    series: list[SeriesInput] = Field(default_factory=list)
    until: str | float | None = None
    seed: int = 1
    expect: list[Expectation] = Field(default_factory=list)
    expect_none: bool = False
    ignore_rules: list[str] = Field(default_factory=list)


class RuleTestFile(_Model):
    """A rule test file."""

    rule_files: list[str]
    tests: list[RuleTestCase]


@dataclass
class CaseResult:
    """Outcome of one test case."""

    name: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)


def build_events(case: RuleTestCase) -> list[InputEvent]:
    """The case's timeline as input events, in time order (deploys first on ties)."""
    rng = random.Random(case.seed)  # noqa: S311 - reproducible test data, not security
    base = dict(case.defaults)
    timed: list[tuple[int, int, InputEvent]] = []
    for d in case.deploys:
        fields = {**base, "version": "2.0.0", **{k: v for k, v in d.items() if k != "at"}}
        fields.pop("region", None)
        ts = EventTime(EPOCH_MS + offset_ms(d.get("at", 0)))
        timed.append((ts, 0, DeployEvent(timestamp=ts, **fields)))
    for c in case.checks:
        fields = {**base, **{k: v for k, v in c.items() if k != "at"}}
        ts = EventTime(EPOCH_MS + offset_ms(c.get("at", 0)))
        timed.append((ts, 1, CheckEvent(timestamp=ts, **fields)))
    for s in case.series:
        labels = {**base, **s.series}
        start, step = offset_ms(s.start), offset_ms(s.interval)
        columns = {k: expand(v, rng) for k, v in s.values.items()}
        for i in range(max(len(v) for v in columns.values())):
            values = {k: v[i] for k, v in columns.items() if i < len(v) and v[i] is not None}
            if values:
                ts = EventTime(EPOCH_MS + start + i * step)
                event = MetricEvent(timestamp=ts, values=values, **labels)  # type: ignore[arg-type]
                timed.append((ts, 2, event))
    timed.sort(key=lambda t: (t[0], t[1]))
    return [e for _, _, e in timed]


def run_timeline(rules: RuleSet, events: list[InputEvent], until_ms: int | None) -> list[Decision]:
    """Feed events in order through a fresh engine, as replay and the daemon do."""
    engine = Engine(rules)
    out: list[Decision] = []
    for event in events:
        out.extend(engine.feed(event))
    if until_ms is not None:
        out.extend(engine.advance(until_ms))
    return out


def _describe(d: Decision) -> str:
    at = format_duration(d.at_ms - EPOCH_MS) if d.at_ms >= EPOCH_MS else str(d.at_ms)
    return f"{d.rule} {d.action} {d.state} at {at} deploy={d.deploy_id} ({d.reason})"


def _matches(exp: Expectation, d: Decision) -> bool:  # noqa: PLR0911 - one test per field
    if not fnmatchcase(d.rule, exp.rule) or d.state != exp.state:
        return False
    if exp.action is not None and d.action != exp.action:
        return False
    if exp.deploy_id is not None and d.deploy_id != exp.deploy_id:
        return False
    if exp.dry_run is not None and d.dry_run != exp.dry_run:
        return False
    rel = d.at_ms - EPOCH_MS
    if exp.at is not None and rel != offset_ms(exp.at):
        return False
    if exp.at_before is not None and rel > offset_ms(exp.at_before):
        return False
    return exp.at_after is None or rel >= offset_ms(exp.at_after)


def run_case(rules: RuleSet, case: RuleTestCase) -> CaseResult:
    """Run one case and compare decisions with its expectations."""
    until = EPOCH_MS + offset_ms(case.until) if case.until is not None else None
    decisions = [
        d
        for d in run_timeline(rules, build_events(case), until)
        if not any(fnmatchcase(d.rule, p) for p in case.ignore_rules)
    ]
    problems: list[str] = []
    unmatched = list(decisions)
    for exp in case.expect:
        hits = [d for d in unmatched if _matches(exp, d)]
        if len(hits) < exp.count:
            want = exp.model_dump(exclude_defaults=True, exclude={"count"})
            problems.append(f"- expected {exp.count}× {want}, got {len(hits)}")
        for d in hits[: exp.count]:
            unmatched.remove(d)
    problems.extend(f"+ unexpected {_describe(d)}" for d in unmatched)
    if problems:
        problems.append("  decisions made:")
        problems.extend(f"    {_describe(d)}" for d in decisions)
        if not decisions:
            problems.append("    (none)")
    return CaseResult(case.name, not problems, problems, decisions)


def run_file(rules: RuleSet, test_file: RuleTestFile) -> list[CaseResult]:
    """Run every case of a test file against an already loaded rule pack."""
    return [run_case(rules, case) for case in test_file.tests]

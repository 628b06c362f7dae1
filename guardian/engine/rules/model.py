"""The rule file format: frozen pydantic models that validate what operators write.

A rule file is ``{settings: {...}, rules: [...]}``. Durations are strings like
``30s``/``5m``/``24h`` (or seconds as a number); quantities are ``5%``,
``0.05``, ``5pp`` (percentage points), ``200ms`` or plain numbers. Conditions
read aloud: ``"> 5%"`` or ``{increase: ">= 100%", baseline: pre_deploy}``.

Limits: this module only validates and normalises (durations to ms, quantities
to floats); compiling rules into matchers lives in ``compiled.py``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_QUANTITY = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(%|pp|ms|s)?\s*$")
_COMPARISON = re.compile(r"^\s*(>=|<=|>|<)\s*(.+)$")

Operator = Literal[">", ">=", "<", "<="]


def parse_duration_ms(value: object) -> int:
    """``"5m"`` → 300000; a bare number is seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 5m or 24h")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return int(value * 1000)
    if isinstance(value, str):
        text = value.replace(" ", "")
        if _DURATION.match(text):
            parts = _DURATION_PART.findall(text)
            return int(sum(float(n) * _UNIT_MS[unit] for n, unit in parts))
    raise ValueError(f"expected a duration like 30s, 5m or 24h, got {value!r}")


def parse_quantity(value: object) -> tuple[float, str]:
    """``"5%"`` → (0.05, "%"); ``"5pp"`` → (0.05, "pp"); ``"200ms"`` → (200, "ms")."""
    if isinstance(value, bool):
        raise ValueError("expected a number like 5%, 0.05, 5pp or 200ms")
    if isinstance(value, int | float):
        return float(value), ""
    if isinstance(value, str):
        m = _QUANTITY.match(value)
        if m:
            number, unit = float(m.group(1)), m.group(2) or ""
            if unit in ("%", "pp"):
                number /= 100.0
            elif unit == "s":
                number, unit = number * 1000.0, "ms"
            return number, unit
    raise ValueError(f"expected a number like 5%, 0.05, 5pp or 200ms, got {value!r}")


def parse_comparison(value: object) -> tuple[Operator, float, str]:
    """``"> 5%"`` → (">", 0.05, "%")."""
    if not isinstance(value, str):
        raise ValueError(f"expected a comparison like '> 5%', got {value!r}")
    m = _COMPARISON.match(value)
    if not m:
        raise ValueError(f"expected a comparison like '> 5%' or '<= 200ms', got {value!r}")
    number, unit = parse_quantity(m.group(2))
    op: Operator = m.group(1)  # type: ignore[assignment]
    return op, number, unit


def _duration(value: object) -> int:
    return parse_duration_ms(value)


def _comparison(value: object) -> tuple[Operator, float, str]:
    if isinstance(value, tuple):
        return value
    return parse_comparison(value)


def _labels(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError("expected a label pattern or a non-empty list of patterns")


DurationMs = Annotated[int, BeforeValidator(_duration), Field(ge=0)]
Comparison = Annotated[tuple[str, float, str], BeforeValidator(_comparison)]
Patterns = Annotated[tuple[str, ...], BeforeValidator(_labels)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Match(_Model):
    """Label matchers: exact, glob (``checkout*``), list (any of), ``!negation``."""

    service: Patterns | None = None
    environment: Patterns | None = None
    region: Patterns | None = None
    cohort: Patterns | None = None
    strategy: Patterns | None = None
    component: Patterns | None = None


class BaselineCondition(_Model):
    """A change against a baseline: ``increase: ">= 100%"`` (relative) or ``drop: ">= 5pp"``."""

    increase: Comparison | None = None
    drop: Comparison | None = None
    baseline: Literal["pre_deploy", "stable", "baseline"] = "pre_deploy"
    baseline_window: DurationMs = 30 * 60_000
    min_delta: Annotated[float, BeforeValidator(lambda v: parse_quantity(v)[0])] = 0.0

    @model_validator(mode="after")
    def _one_direction(self) -> BaselineCondition:
        if (self.increase is None) == (self.drop is None):
            raise ValueError("say exactly one of 'increase' or 'drop'")
        return self


def _ratio(value: object) -> float:
    """``"2x"`` → 2.0 (a bare number is a ratio too)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and re.match(r"^\s*\d+(?:\.\d+)?\s*x\s*$", value):
        return float(value.strip().removesuffix("x"))
    raise ValueError(f"expected a ratio like 2x, got {value!r}")


def _increase(value: object) -> tuple[float, str]:
    text = value.strip().removeprefix("+") if isinstance(value, str) else value
    number, unit = parse_quantity(text)
    if unit not in ("pp", "%") or number < 0:
        raise ValueError(f"expected an increase like 0.5pp or +20%, got {value!r}")
    return number, unit


class CompareCondition(_Model):
    """A statistical comparison, decided per event, with the stable cohort at the same time
    (``baseline: stable``) or with the same region before the deploy (``baseline: before``).

    Rates (``error_rate`` or numerator/denominator): ``at_least: 2x`` and/or
    ``plus: 0.5pp``. Gauges (``latency_p95_ms``): ``plus: +20%``.
    """

    baseline: Literal["stable", "before"] = "stable"
    # ``before``: how far back before the deploy the region's traffic is the baseline; each
    # 30 s after the deploy is compared with the 30 s this long earlier, so it is also how
    # long after the deploy's start the test can go on.
    before: Annotated[int, BeforeValidator(_duration), Field(ge=60_000)] = 30 * 60_000
    at_least: Annotated[float, BeforeValidator(_ratio), Field(gt=1.0)] | None = None
    plus: Annotated[tuple[float, str], BeforeValidator(_increase)] | None = None
    confidence: float = Field(default=0.99, gt=0.5, lt=1.0)
    # Gauges: stable's latest sample is paired with the canary's only if at most this old.
    max_age: DurationMs = 30_000
    # Gauges: samples behind fewer requests than this (either cohort) are skipped.
    min_requests: float = Field(default=50.0, ge=0)

    @model_validator(mode="after")
    def _an_effect(self) -> CompareCondition:
        if self.at_least is None and self.plus is None:
            raise ValueError("say the smallest effect that matters: 'at_least' and/or 'plus'")
        return self


class Volume(_Model):
    """Minimum traffic in the window: ``{metric: requests, at_least: 100}``."""

    metric: str = "requests"
    at_least: float = Field(gt=0)


class NoData(_Model):
    """What missing data means: ``ok`` (default) or ``alert`` after a silence."""

    policy: Literal["ok", "alert"] = "ok"
    after: DurationMs = 5 * 60_000


class CheckSpec(_Model):
    """A check status rule: ``{names: [api_health], status: fail, within: 5m}``."""

    names: Patterns = ("*",)
    status: Literal["fail", "warn"] = "fail"
    within: DurationMs | None = None
    after: tuple[Literal["started", "progressed", "completed"], ...] = ("started", "progressed")


def _condition_kind(value: Any) -> str:
    return "threshold" if isinstance(value, str | tuple) else "baseline"


Condition = Annotated[
    Annotated[Comparison, Tag("threshold")] | Annotated[BaselineCondition, Tag("baseline")],
    Discriminator(_condition_kind),
]

AggregateName = Annotated[str, Field(pattern=r"^(mean|min|max|sum|count|ratio|p\d{1,2})$")]


class Rule(_Model):
    """One rule an SRE can read aloud: what it watches, measures, judges bad, and does."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    description: str = ""
    match: Match = Match()
    applies: Literal["during_deploy", "outside_deploy", "always"] = "during_deploy"
    # ``reached``: judge only series in regions the deploy has reached (progressive waves).
    regions: Literal["all", "reached"] = "all"
    metric: str | None = None
    aggregate: AggregateName | None = None
    numerator: str | None = None
    denominator: str | None = None
    window: DurationMs = 60_000
    condition: Condition | None = None
    compare: CompareCondition | None = None
    check: CheckSpec | None = None
    for_: DurationMs | None = Field(default=None, alias="for")
    min_samples: int = Field(default=3, ge=1)
    min_volume: Volume | None = None
    no_data: NoData = NoData()
    resolve: Comparison | None = None
    cooldown: DurationMs = 10 * 60_000
    bake_time: DurationMs | None = None
    severity: Literal["critical", "warning", "info"] | None = None
    action: Literal["rollback", "pause", "notify"]
    dry_run: bool = False

    @model_validator(mode="after")
    def _coherent(self) -> Rule:
        if (self.metric is None) == (self.check is None):
            raise ValueError("a rule watches either a 'metric' or a 'check', exactly one")
        if self.metric is not None and (self.condition is None) == (self.compare is None):
            raise ValueError("a metric rule needs a 'condition' or a 'compare', exactly one")
        if self.compare is not None:
            self._check_compare(self.compare)
        if self.check is not None and self.condition is not None:
            raise ValueError("a check rule takes no 'condition'")
        if self.action in ("rollback", "pause") and self.applies != "during_deploy":
            raise ValueError(f"action {self.action} needs a deploy: use applies: during_deploy")
        if self.aggregate == "ratio" and self.metric != "error_rate" and not self.denominator:
            raise ValueError("aggregate ratio needs 'numerator' and 'denominator'")
        return self

    def _check_compare(self, compare: CompareCondition) -> None:
        if self.check is not None:
            raise ValueError("a check rule takes no 'compare'")
        if compare.baseline == "stable" and (
            self.match.cohort is None or "stable" in self.match.cohort
        ):
            raise ValueError(
                "'compare' judges a cohort against stable: say match: {cohort: canary}"
            )
        if self.for_ is not None or self.min_volume is not None:
            raise ValueError("'compare' decides on evidence: it takes no 'for' or 'min_volume'")
        if self.is_rate:
            if compare.plus is not None and compare.plus[1] != "pp":
                raise ValueError("a rate's 'plus' is in percentage points, like 0.5pp")
        elif compare.at_least is not None or compare.plus is None or compare.plus[1] != "%":
            raise ValueError("a gauge is compared by a relative shift: plus: +20%")

    @property
    def is_rate(self) -> bool:
        """Whether this rule measures a rate (errors out of requests, or num/den)."""
        return self.metric == "error_rate" or self.denominator is not None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Settings(_Model):
    """Pack-wide defaults: bake time after ``completed`` and rollback timeouts."""

    bake_time: DurationMs = 30 * 60_000
    rollback_timeout: DurationMs = 10 * 60_000
    rollback_timeout_by_strategy: dict[
        Literal["blue_green", "canary", "progressive", "rolling"], DurationMs
    ] = Field(default_factory=dict)


class RuleFile(_Model):
    """The top level of a rule file."""

    settings: Settings | None = None
    rules: list[Rule] = Field(default_factory=list)

"""``inputs.yaml``: how OTLP metrics and Prometheus samples become v1 metric events.

One file covers both inputs, each in its own section (``otlp:``,
``prometheus:``) with the same shape: which attributes or labels mean
service, environment, region, cohort and version (the first one present
wins); which metric counts requests (and which of its label values make an
error); which histogram gives the latency quantiles; which gauges and
counters feed which ``values`` keys; which series to drop. Every field has a
default that fits OpenTelemetry's semantic conventions and common Prometheus
exporters (``DEFAULTS_YAML`` below is that default, written out), so a
section, or the whole file, may be left out.

``load_inputs`` reads a file and raises ``InputsError`` listing every problem
as ``file:line:column: field.path: message`` (as rule files do).
``compile_mapping`` turns a section into the matchers the converters use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from guardian.errors import ConfigError
from guardian.yamldoc import YamlProblem, YamlProblems, parse_located

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def parse_duration_ms(value: object) -> int:
    """``"5m"`` → 300000; a bare number is seconds (as in rule files)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return int(value * 1000)
    if isinstance(value, str):
        found = _DURATION.match(value.strip())
        if found:
            return int(float(found.group(1)) * _UNIT_MS[found.group(2)])
    raise ValueError(f"expected a duration like 30s or 5m, got {value!r}")


Name = Annotated[str, Field(min_length=1, max_length=256)]


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


Names = Annotated[list[Name], BeforeValidator(_one_or_many), Field(max_length=32)]
ValueKey = Annotated[str, Field(min_length=1, max_length=128)]
Quantile = Annotated[float, Field(gt=0, lt=1)]
DurationMs = Annotated[int, BeforeValidator(parse_duration_ms), Field(ge=1000)]
Role = Literal["service", "environment", "region", "cohort", "version"]
ROLES: tuple[Role, ...] = ("service", "environment", "region", "cohort", "version")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Requests(_Model):
    """The request counter: its increments are ``requests``, and ``errors`` by status."""

    metrics: Names
    status: Names = Field(description="labels holding the HTTP status code")
    error_status: int = Field(500, ge=100, le=599)
    error_labels: Names = Field(default_factory=list, description="present and non-empty: error")


class OtlpRequests(Requests):
    """The OTLP defaults of ``requests``."""

    metrics: Names = Field(default_factory=lambda: ["http.server.request.duration"])
    status: Names = Field(default_factory=lambda: ["http.response.status_code"])
    error_labels: Names = Field(default_factory=lambda: ["error.type"])


class PrometheusRequests(Requests):
    """The Prometheus defaults of ``requests``."""

    metrics: Names = Field(
        default_factory=lambda: ["http_requests_total", "http_server_requests_total"]
    )
    status: Names = Field(default_factory=lambda: ["code", "status"])


class Latency(_Model):
    """The latency histogram: quantiles interpolated from its buckets, in milliseconds."""

    metrics: Names
    unit: Literal["auto", "s", "ms"] = "auto"
    quantiles: dict[ValueKey, Quantile] = Field(
        default_factory=lambda: {"latency_p95_ms": 0.95, "latency_p99_ms": 0.99}, max_length=8
    )


class OtlpLatency(Latency):
    """The OTLP defaults of ``latency``."""

    metrics: Names = Field(default_factory=lambda: ["http.server.request.duration"])


class PrometheusLatency(Latency):
    """The Prometheus defaults of ``latency``."""

    metrics: Names = Field(
        default_factory=lambda: [
            "http_request_duration_seconds_bucket",
            "http_server_request_duration_seconds_bucket",
        ]
    )


class ValueSource(_Model):
    """Metrics feeding one ``values`` key (gauges as they are, counters as increments)."""

    metrics: Names
    kind: Literal["auto", "gauge", "counter"] = "auto"


class DropRule(_Model):
    """Series to leave out: the metric name and every listed label must match (globs)."""

    metric: Name = "*"
    labels: dict[Name, str] = Field(default_factory=dict, max_length=32)

    @model_validator(mode="after")
    def _not_everything(self) -> DropRule:
        if self.metric == "*" and not self.labels:
            raise ValueError("this rule would drop every series: name a metric or labels")
        return self


class OtlpLabels(_Model):
    """Attribute names per role; resource attributes first, then the data point's."""

    service: Names = Field(default_factory=lambda: ["service.name"])
    environment: Names = Field(
        default_factory=lambda: ["deployment.environment.name", "deployment.environment"]
    )
    region: Names = Field(default_factory=lambda: ["cloud.region"])
    cohort: Names = Field(default_factory=lambda: ["deployment.cohort"])
    version: Names = Field(default_factory=lambda: ["service.version"])


class PrometheusLabels(_Model):
    """Label names per role (after Prometheus' relabelling and external labels)."""

    service: Names = Field(default_factory=lambda: ["service", "job"])
    environment: Names = Field(default_factory=lambda: ["environment", "env"])
    region: Names = Field(default_factory=lambda: ["region"])
    cohort: Names = Field(default_factory=lambda: ["cohort"])
    version: Names = Field(default_factory=lambda: ["version"])


def _otlp_values() -> dict[str, ValueSource]:
    return {
        "cpu_utilization": ValueSource(
            metrics=["process.cpu.utilization", "container.cpu.utilization"], kind="gauge"
        ),
        "memory_utilization": ValueSource(metrics=["system.memory.utilization"], kind="gauge"),
    }


class OtlpMapping(_Model):
    """The ``otlp:`` section."""

    labels: OtlpLabels = Field(default_factory=OtlpLabels)
    environment: Name | None = Field(None, description="environment when no attribute says")
    requests: OtlpRequests = Field(default_factory=OtlpRequests)
    latency: OtlpLatency = Field(default_factory=OtlpLatency)
    values: dict[ValueKey, ValueSource] = Field(default_factory=_otlp_values, max_length=48)
    drop: list[DropRule] = Field(default_factory=list, max_length=256)


class PrometheusMapping(_Model):
    """The ``prometheus:`` section."""

    labels: PrometheusLabels = Field(default_factory=PrometheusLabels)
    environment: Name | None = Field(None, description="environment when no label says")
    requests: PrometheusRequests = Field(default_factory=PrometheusRequests)
    latency: PrometheusLatency = Field(default_factory=PrometheusLatency)
    values: dict[ValueKey, ValueSource] = Field(default_factory=dict, max_length=48)
    drop: list[DropRule] = Field(default_factory=list, max_length=256)


class InputsFile(_Model):
    """The whole ``inputs.yaml``."""

    otlp: OtlpMapping = Field(default_factory=OtlpMapping)
    prometheus: PrometheusMapping = Field(default_factory=PrometheusMapping)
    max_interval: DurationMs = Field(
        300_000, description="a longer gap in a series starts a new baseline (no increment)"
    )


DEFAULTS_YAML = """\
# inputs.yaml: how OTLP metrics and Prometheus samples become v1 metric events.
# These are the defaults; leave out whatever you do not change.
otlp:
  labels:                      # first attribute present wins (resource, then data point)
    service: [service.name]
    environment: [deployment.environment.name, deployment.environment]
    region: [cloud.region]
    cohort: [deployment.cohort]          # values: canary, stable, baseline
    version: [service.version]
  environment: null            # used when no attribute names one (else: not mapped)
  requests:                    # histogram (its count) or counter: requests and errors
    metrics: [http.server.request.duration]
    status: [http.response.status_code]
    error_status: 500          # status >= this is an error
    error_labels: [error.type] # or this attribute present
  latency:                     # histogram: quantiles as histogram_quantile() computes them
    metrics: [http.server.request.duration]
    unit: auto                 # the metric's unit (s or ms)
    quantiles: {latency_p95_ms: 0.95, latency_p99_ms: 0.99}
  values:                      # gauges as they are, counters as increments
    cpu_utilization: {metrics: [process.cpu.utilization, container.cpu.utilization], kind: gauge}
    memory_utilization: {metrics: [system.memory.utilization], kind: gauge}
  drop: []                     # e.g. [{metric: "*", labels: {deployment.cohort: shadow}}]
prometheus:
  labels:                      # after relabelling and external_labels
    service: [service, job]
    environment: [environment, env]
    region: [region]
    cohort: [cohort]
    version: [version]
  environment: null
  requests:                    # counters by status code
    metrics: [http_requests_total, http_server_requests_total]
    status: [code, status]
    error_status: 500
    error_labels: []
  latency:                     # the _bucket series of classic histograms
    metrics: [http_request_duration_seconds_bucket, http_server_request_duration_seconds_bucket]
    unit: auto                 # from the name: _seconds or _milliseconds
    quantiles: {latency_p95_ms: 0.95, latency_p99_ms: 0.99}
  values: {}                   # e.g. {cpu_utilization: {metrics: [process_cpu_utilization]}}
  drop: []
max_interval: 5m               # a longer gap in a series starts a new baseline
"""


class InputsError(ConfigError):
    """``inputs.yaml`` is invalid; ``problems`` lists every one."""

    def __init__(self, problems: Sequence[YamlProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = list(problems)


def parse_inputs(text: str, filename: str = "<inputs>") -> InputsFile:
    """Validate the text of an ``inputs.yaml``; raise ``InputsError`` listing every problem."""
    try:
        parsed, _root = parse_located(InputsFile, text, filename)
    except YamlProblems as exc:
        raise InputsError(exc.problems) from None
    return parsed


def load_inputs(path: Path | None) -> InputsFile:
    """The mapping in ``path``, or the defaults when there is no file."""
    if path is None:
        return InputsFile()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputsError([YamlProblem(str(path), 1, 1, "(file)", str(exc))]) from None
    return parse_inputs(text, str(path))


# ---------------------------------------------------------------- compiled form
MetricKind = Literal["requests", "latency", "value"]


@dataclass(frozen=True, slots=True)
class Target:
    """What one metric name feeds: the request counter, a latency histogram or a values key."""

    kind: MetricKind
    key: str = ""  # the values key, for kind "value"
    counter: bool | None = None  # for values: True/False when the file says, None for auto


@dataclass(frozen=True, slots=True)
class Mapping:
    """One input's section, compiled for the converters' hot path."""

    roles: tuple[tuple[Role, tuple[str, ...]], ...]
    default_environment: str | None
    targets: dict[str, tuple[Target, ...]]
    status_labels: tuple[str, ...]
    error_status: int
    error_labels: tuple[str, ...]
    latency_unit: Literal["auto", "s", "ms"]
    quantiles: tuple[tuple[str, float], ...]
    drop: tuple[DropRule, ...]
    max_interval_ms: int

    def dropped(self, metric: str, labels: dict[str, str]) -> bool:
        """Whether a drop rule matches this series."""
        for rule in self.drop:
            if fnmatchcase(metric, rule.metric) and all(
                fnmatchcase(labels.get(name, ""), pattern) for name, pattern in rule.labels.items()
            ):
                return True
        return False


def compile_mapping(
    section: OtlpMapping | PrometheusMapping, max_interval_ms: int = 300_000
) -> Mapping:
    """The compiled form of one section of ``inputs.yaml``."""
    targets: dict[str, list[Target]] = {}
    for name in section.requests.metrics:
        targets.setdefault(name, []).append(Target("requests"))
    for name in section.latency.metrics:
        targets.setdefault(name, []).append(Target("latency"))
    for key, source in section.values.items():
        counter = None if source.kind == "auto" else source.kind == "counter"
        for name in source.metrics:
            targets.setdefault(name, []).append(Target("value", key, counter))
    labels = section.labels
    return Mapping(
        roles=tuple((role, tuple(getattr(labels, role))) for role in ROLES),
        default_environment=section.environment,
        targets={name: tuple(found) for name, found in targets.items()},
        status_labels=tuple(section.requests.status),
        error_status=section.requests.error_status,
        error_labels=tuple(section.requests.error_labels),
        latency_unit=section.latency.unit,
        quantiles=tuple(section.latency.quantiles.items()),
        drop=tuple(section.drop),
        max_interval_ms=max_interval_ms,
    )

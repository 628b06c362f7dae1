"""``inputs.yaml``: defaults as documented, partial overrides, problems with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardian.inputs.mapping import (
    DEFAULTS_YAML,
    InputsError,
    InputsFile,
    Target,
    compile_mapping,
    load_inputs,
    parse_inputs,
)


def test_the_documented_defaults_are_the_defaults() -> None:
    """DEFAULTS_YAML (printed by ``guardian inputs defaults``) is exactly the model's default."""
    assert parse_inputs(DEFAULTS_YAML) == InputsFile()
    assert load_inputs(None) == InputsFile()


def test_a_partial_section_keeps_the_other_defaults() -> None:
    """Overriding one field leaves every other default of that input in force."""
    mapping = parse_inputs(
        "prometheus:\n  labels: {service: app}\n  requests: {metrics: [reqs_total]}\n"
    )
    assert mapping.prometheus.labels.service == ["app"]
    assert mapping.prometheus.labels.environment == ["environment", "env"]
    assert mapping.prometheus.requests.status == ["code", "status"]
    assert mapping.otlp == InputsFile().otlp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("otlp:\n  labels:\n    servce: [x]\n", "f.yaml:3:5: otlp.labels.servce: Extra inputs"),
        ("otlp:\n  drop: [{}]\n", "f.yaml:2:10: otlp.drop[0]: this rule would drop every series"),
        ("max_interval: 5x\n", "f.yaml:1:1: max_interval: expected a duration"),
        ("max_interval: 10ms\n", "f.yaml:1:1: max_interval: Input should be greater"),
        (
            "prometheus:\n  latency:\n    quantiles: {latency_p95_ms: 95}\n",
            "f.yaml:3:17: prometheus.latency.quantiles.latency_p95_ms: Input should be less than 1",
        ),
        ("prometheus:\n  requests:\n    error_status: 42\n", "f.yaml:3:5: prometheus.requests"),
        ("otlp: [\n", "f.yaml:2:1: (file)"),
    ],
)
def test_problems_are_located(text: str, expected: str) -> None:
    """Each problem says file, line, column and field path."""
    with pytest.raises(InputsError) as caught:
        parse_inputs(text, "f.yaml")
    assert str(caught.value.problems[0]).startswith(expected), caught.value.problems


def test_an_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    """A missing file is reported like the others."""
    with pytest.raises(InputsError, match=r"inputs\.yaml:1:1"):
        load_inputs(tmp_path / "inputs.yaml")


def test_compiled_targets_say_what_each_metric_feeds() -> None:
    """One metric may feed requests and latency (the OTLP histogram does)."""
    mapping = InputsFile()
    otlp = compile_mapping(mapping.otlp)
    assert otlp.targets["http.server.request.duration"] == (Target("requests"), Target("latency"))
    assert otlp.targets["process.cpu.utilization"] == (Target("value", "cpu_utilization", False),)
    prometheus = compile_mapping(
        parse_inputs(
            "prometheus:\n  values: {gc: {metrics: [gc_total], kind: counter}}\n"
        ).prometheus
    )
    assert prometheus.targets["gc_total"] == (Target("value", "gc", True),)
    assert dict(prometheus.roles)["service"] == ("service", "job")


@pytest.mark.parametrize(
    ("metric", "labels", "dropped"),
    [
        ("http_requests_total", {"cohort": "shadow"}, True),
        ("http_requests_total", {"cohort": "canary"}, False),
        ("go_gc_total", {}, True),
        ("http_requests_total", {}, False),
    ],
)
def test_drop_rules_match_metric_and_labels(
    metric: str, labels: dict[str, str], dropped: bool
) -> None:
    """A rule drops a series when its metric glob and every label glob match."""
    section = parse_inputs(
        "prometheus:\n  drop:\n    - {labels: {cohort: shad*}}\n    - {metric: 'go_*'}\n"
    ).prometheus
    assert compile_mapping(section).dropped(metric, labels) is dropped


def test_the_readme_shows_the_defaults() -> None:
    """The README's inputs.yaml reference is the default mapping, line for line."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    assert DEFAULTS_YAML.split("\n", 2)[2] in readme

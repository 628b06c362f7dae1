"""Subscriptions: parsing with file:line:column errors, and matching decisions to destinations."""

# ruff: noqa: E501 - expected messages are compared whole, one table row per line

from __future__ import annotations

from pathlib import Path

import pytest

from guardian.notify.subscriptions import (
    SubscriptionError,
    compile_subscriptions,
    load_subscriptions,
    parse_subscriptions,
    route,
)

TEXT = """\
subscriptions:
  - name: checkout-oncall
    match: {service: "checkout*", environment: production, severity: [critical, warning]}
    slack: ["#checkout-oncall"]
    email: oncall@checkout.example
  - name: everything-but-beta
    match: {service: ["*", "!*-beta"], severity: "!info", region: "us-*"}
    slack: "#all"
    slack_webhook: ["https://hooks.example/T/B/x"]
  - name: audit
    email: ["oncall@checkout.example", "audit@example.test"]
"""


@pytest.mark.parametrize(
    ("service", "severity", "regions", "expected"),
    [
        ("checkout", "critical", ["us-east"], ["slack:#checkout-oncall", "email:oncall@checkout.example", "slack:#all", "webhook:everything-but-beta#0", "email:audit@example.test"]),
        ("checkout-beta", "warning", ["eu-west"], ["slack:#checkout-oncall", "email:oncall@checkout.example", "email:audit@example.test"]),
        ("search", "info", ["us-east"], ["email:oncall@checkout.example", "email:audit@example.test"]),
        ("search", "critical", [], ["email:oncall@checkout.example", "email:audit@example.test"]),
    ],
)  # fmt: skip
def test_route_applies_globs_lists_negation_and_dedups_destinations(
    service: str, severity: str, regions: list[str], expected: list[str]
) -> None:
    """A decision reaches each matching destination once, in subscription order."""
    subs = compile_subscriptions(parse_subscriptions(TEXT))
    found = route(
        subs, service=service, environment="production", severity=severity, regions=regions
    )
    assert [d.label for d in found] == expected


def test_route_without_severity_ignores_the_severity_filter() -> None:
    """Confirmations (severity None) reach every subscription of the service."""
    subs = compile_subscriptions(parse_subscriptions(TEXT))
    found = route(subs, service="checkout", environment="production", severity=None)
    assert "slack:#checkout-oncall" in [d.label for d in found]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("subscriptions:\n  - name: a\n    match: {severity: [bogus]}\n",
         ["f.yaml:3:13: subscriptions[0].match.severity: 'bogus' matches no severity (critical, warning, info)"]),
        ("subscriptions:\n  - name: a\n    email: [nope]\n    foo: 1\n",
         ["f.yaml:3:5: subscriptions[0].email: 'nope' is not an email address",
          "f.yaml:4:5: subscriptions[0].foo: Extra inputs are not permitted"]),
        ("subscriptions:\n  - name: a\n    slack_webhook: ftp://x\n",
         ["f.yaml:3:5: subscriptions[0].slack_webhook: a webhook must be an http(s):// URL"]),
        ("subscriptions:\n  - name: a\n  - name: a\n",
         ["f.yaml:1:1: subscriptions: duplicate subscription name 'a'"]),
        ("subscriptions:\n  - name: a\n    match: {service: []}\n",
         ["f.yaml:3:13: subscriptions[0].match.service: expected a pattern or a non-empty list of patterns"]),
        ("subscriptions:\n  - name: a\n    slack: [1]\n",
         ["f.yaml:3:5: subscriptions[0].slack: expected a string or a list of non-empty strings"]),
        ("subscriptions: [\n", ["f.yaml:2:1: (file): expected the node content, but found '<stream end>'"]),
    ],
)  # fmt: skip
def test_parse_reports_every_problem_with_its_position(text: str, expected: list[str]) -> None:
    """Each problem is one ``file:line:column: field.path: message`` line."""
    with pytest.raises(SubscriptionError) as info:
        parse_subscriptions(text, "f.yaml")
    assert [str(p) for p in info.value.problems] == expected


def test_empty_file_has_no_subscriptions_and_missing_file_is_an_error(tmp_path: Path) -> None:
    """An empty file is valid; an unreadable one is a located error."""
    empty = tmp_path / "s.yaml"
    empty.write_text("")
    assert load_subscriptions(empty) == []
    with pytest.raises(SubscriptionError, match=r"missing\.yaml:1:1"):
        load_subscriptions(tmp_path / "missing.yaml")

"""``targets.yaml``: loading, located errors and which targets a command acts on."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardian.executor.targets import TargetsError, load_targets, parse_targets

GOOD = """\
targets:
  - service: checkout
    environment: production
    region: us-east
    context: prod-us-east
    namespace: shop
    kind: Deployment
    name: checkout
  - service: checkout
    environment: production
    region: eu-west
    namespace: shop
    kind: Rollout
    name: checkout
    container: app
    version_from: image
  - service: cart
    environment: production
    namespace: shop
    kind: Deployment
    name: cart
"""


def test_a_valid_file_loads_with_defaults() -> None:
    """Every entry loads; unset fields take their documented defaults."""
    targets = parse_targets(GOOD, "targets.yaml").targets
    assert [t.ref for t in targets] == [
        "prod-us-east/shop/Deployment/checkout",
        "(current)/shop/Rollout/checkout",
        "(current)/shop/Deployment/cart",
    ]
    assert targets[0].version_from == "auto"
    assert targets[0].version_label == "app.kubernetes.io/version"


@pytest.mark.parametrize(
    ("regions", "expected"),
    [
        (("us-east",), ["prod-us-east/shop/Deployment/checkout"]),
        (
            ("us-east", "eu-west"),
            ["prod-us-east/shop/Deployment/checkout", "(current)/shop/Rollout/checkout"],
        ),
        ((), ["prod-us-east/shop/Deployment/checkout", "(current)/shop/Rollout/checkout"]),
        (("ap-south",), []),
    ],
)
def test_a_command_acts_on_the_targets_of_its_regions(
    regions: tuple[str, ...], expected: list[str]
) -> None:
    """A command's regions pick entries; no regions means every region of the service."""
    targets = parse_targets(GOOD, "targets.yaml")
    assert [t.ref for t in targets.for_command("checkout", "production", regions)] == expected


def test_an_entry_without_region_serves_every_region() -> None:
    """cart has no region: any region of a cart command reaches it, once."""
    targets = parse_targets(GOOD, "targets.yaml")
    found = targets.for_command("cart", "production", ("us-east", "eu-west"))
    assert [t.name for t in found] == ["cart"]
    assert targets.for_command("cart", "staging", ()) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "targets:\n  - service: a\n    environment: p\n    namespace: shop\n"
            "    kind: StatefulSet\n    name: a\n",
            "t.yaml:5:5: targets[0].kind: Input should be 'Deployment' or 'Rollout'",
        ),
        (
            "targets:\n  - service: a\n    environment: p\n    kind: Deployment\n    name: a\n",
            "t.yaml:2:5: targets[0].namespace: Field required",
        ),
        (
            "targets:\n  - service: a\n    environment: p\n    namespace: shop\n"
            "    kind: Deployment\n    name: a\n    replicas: 3\n",
            "t.yaml:7:5: targets[0].replicas: Extra inputs are not permitted",
        ),
        (
            "targets:\n  - service: a\n    environment: p\n    namespace: Not_Valid!\n"
            "    kind: Deployment\n    name: a\n",
            "t.yaml:4:5: targets[0].namespace: String should match pattern",
        ),
        ("targets: [\n", "t.yaml:2:1: (file):"),
    ],
)
def test_problems_are_located_by_file_line_and_field(text: str, expected: str) -> None:
    """Each mistake comes back as file:line:column: field.path: message."""
    with pytest.raises(TargetsError) as raised:
        parse_targets(text, "t.yaml")
    assert str(raised.value.problems[0]).startswith(expected), raised.value.problems


def test_two_entries_for_the_same_place_are_refused_at_the_second() -> None:
    """The same (service, environment, region) twice: the second entry's line is reported."""
    text = (
        GOOD
        + "  - service: cart\n    environment: production\n    namespace: x\n"
        + ("    kind: Deployment\n    name: other\n")
    )
    with pytest.raises(TargetsError) as raised:
        parse_targets(text, "t.yaml")
    (problem,) = raised.value.problems
    assert (problem.line, problem.path) == (22, "targets[3]")
    assert "already the target at targets[2]" in problem.message


def test_an_unreadable_file_is_one_problem(tmp_path: Path) -> None:
    """A missing file is reported like any other problem, at line 1."""
    with pytest.raises(TargetsError) as raised:
        load_targets(tmp_path / "missing.yaml")
    assert raised.value.problems[0].line == 1
    good = tmp_path / "targets.yaml"
    good.write_text(GOOD)
    assert len(load_targets(good).targets) == 3

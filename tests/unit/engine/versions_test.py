"""What a deploy replaces when it does not say, and ``@live`` steps that close the live deploy."""

from __future__ import annotations

import msgspec
import pytest

from guardian.engine import Engine
from guardian.engine.snapshot import decode_snapshot, encode_snapshot
from guardian.wire.events import LIVE_DEPLOY, DeployEvent, InputEvent, MetricEvent
from tests.unit.engine.builders import ERROR_RULE, bad_traffic, deploy, metric, rules, run


def _versioned(seconds: float, version: str, cohort: str | None = None) -> MetricEvent:
    return msgspec.structs.replace(
        metric(seconds, cohort=cohort, requests=20, errors=0), version=version
    )


def _unnamed(
    seconds: float, version: str, deploy_id: str = "d1", type_: str = "started"
) -> DeployEvent:
    """A deploy step that does not say which version it replaces."""
    return deploy(seconds, type_, deploy_id, version=version, previous_version=None)


@pytest.mark.parametrize(
    ("name", "before", "expected"),
    [
        ("nothing seen", [], None),
        ("metrics named it", [_versioned(0, "1.9.0"), _versioned(1, "1.9.0")], "1.9.0"),
        (
            "canary metrics of the new version came first",
            [_versioned(0, "1.9.0"), _versioned(1, "2.0.0", "canary"), _versioned(2, "1.9.0")],
            "1.9.0",
        ),
        (
            "an earlier deploy brought it",
            [_unnamed(0, "1.9.0", "d0"), _unnamed(1, "1.9.0", "d0", "completed")],
            "1.9.0",
        ),
        (
            "an earlier deploy was rolled back",
            [
                deploy(0, "started", "d0", version="1.9.5", previous_version="1.9.0"),
                deploy(1, "rolled_back", "d0", version="1.9.5", previous_version="1.9.0"),
            ],
            "1.9.0",
        ),
        (
            "a CDEvents rollback said what runs again",
            [_unnamed(0, "1.9.5", "d0"), _unnamed(1, "1.8.0", LIVE_DEPLOY, "rolled_back")],
            "1.8.0",
        ),
    ],
)
def test_previous_version_is_what_was_last_seen_running(
    name: str, before: list[InputEvent], expected: str | None
) -> None:
    """A deploy without ``previous_version`` replaces the version last seen, or says unknown."""
    engine = Engine(rules(ERROR_RULE))
    run(engine, [*before, _unnamed(10, "2.0.0")])
    info = engine.deploy_of("checkout", "production")
    assert info is not None
    assert (info.deploy_id, info.previous_version) == ("d1", expected), name


def test_an_explicit_previous_version_wins() -> None:
    """What the deploy event says it replaces is kept, whatever metrics named before."""
    engine = Engine(rules(ERROR_RULE))
    run(engine, [_versioned(0, "1.0.0"), deploy(10)])
    info = engine.deploy_of("checkout", "production")
    assert info is not None
    assert info.previous_version == "1.9.0"


def test_an_unknown_previous_version_is_learnt_from_the_stable_cohort() -> None:
    """Nothing seen before the deploy: the first other version seen while it is live is it."""
    engine = Engine(rules(ERROR_RULE))
    decisions = run(
        engine,
        [
            _unnamed(0, "2.0.0"),
            _versioned(1, "2.0.0", "canary"),
            _versioned(2, "1.9.0", "stable"),
            *bad_traffic(3, 30),
        ],
    )
    rollback = next(d for d in decisions if d.action == "rollback")
    assert rollback.deploy is not None
    assert rollback.deploy.previous_version == "1.9.0"


def test_a_command_without_any_version_seen_keeps_it_unknown() -> None:
    """No metric names a version and no earlier deploy: the decision's deploy says None."""
    engine = Engine(rules(ERROR_RULE))
    decisions = run(engine, [_unnamed(0, "2.0.0"), *bad_traffic(1, 30)])
    rollback = next(d for d in decisions if d.action == "rollback")
    assert rollback.deploy is not None
    assert rollback.deploy.previous_version is None


def test_a_live_rollback_closes_the_current_deploy_whatever_its_id() -> None:
    """``@live`` rolled_back: the live deploy is closed and keeps its own id and version."""
    engine = Engine(rules(ERROR_RULE))
    decisions = run(
        engine,
        [
            _versioned(0, "1.9.0"),
            _unnamed(1, "2.0.0", "cde-1"),
            *bad_traffic(2, 30),
            _unnamed(40, "1.9.0", LIVE_DEPLOY, "rolled_back"),
        ],
    )
    assert [d.action for d in decisions if d.action == "rollback"] == ["rollback"]
    info = engine.deploy_of("checkout", "production")
    assert info is not None
    assert (info.deploy_id, info.version, info.status) == ("cde-1", "2.0.0", "rolled_back")
    assert info.rollback_rule == "errors"
    # No escalation: the rollback was confirmed.
    assert not [d for d in engine.advance(10**15) if d.action == "escalate"]


@pytest.mark.parametrize(
    "events",
    [
        [_unnamed(0, "1.9.0", LIVE_DEPLOY, "rolled_back")],  # no deploy at all
        [  # an @live step older than the deploy in force
            _unnamed(10, "2.0.0"),
            _unnamed(5, "1.9.0", LIVE_DEPLOY, "rolled_back"),
        ],
    ],
)
def test_a_live_rollback_without_a_live_deploy_changes_no_deploy(
    events: list[InputEvent],
) -> None:
    """Nothing to close: the step only says which version runs."""
    engine = Engine(rules(ERROR_RULE))
    run(engine, events)
    info = engine.deploy_of("checkout", "production")
    assert info is None or info.status == "active"


def test_seen_versions_survive_a_snapshot() -> None:
    """A restored service still knows what it ran, so the next deploy's command can say it."""
    engine = Engine(rules(ERROR_RULE))
    run(engine, [_versioned(0, "1.8.0"), _versioned(1, "1.9.0")])
    snapshot = engine.snapshot("checkout", "production")
    assert snapshot is not None
    restored = Engine(rules(ERROR_RULE))
    restored.restore(decode_snapshot(encode_snapshot(snapshot)))
    run(restored, [_unnamed(10, "1.9.0")])
    info = restored.deploy_of("checkout", "production")
    assert info is not None
    assert info.previous_version == "1.8.0"

"""Snapshots written before deploy-only rules were bound lazily still restore and decide alike."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from guardian.engine import Engine, decode_snapshot
from guardian.wire.events import InputEvent
from tests.unit.engine.builders import deploy, metric, rules, run
from tests.unit.engine.snapshot_test import PACK

# Written by commit 2a0bd41 (snapshot version 3, every rule bound on every series): the
# state after a rolled-back deploy whose rule still shows as firing, and what that engine
# decided on ``_rest()`` after it.
SAVED = json.loads((Path(__file__).parent / "data" / "snapshot_v3_eager_bindings.json").read_text())


def _rest() -> list[InputEvent]:
    """A second deploy, bad from the start (as the saved engine was fed after the snapshot)."""
    bad = [metric(t, requests=100, errors=9, latency_ms=300) for t in range(401, 470)]
    return [deploy(400, deploy_id="d2"), *bad]


def test_a_v3_snapshot_with_progress_of_a_deploy_that_ended_restores() -> None:
    """The ended deploy's rule progress is not bound; the next deploy decides as before."""
    engine = Engine(rules(PACK))
    engine.restore(decode_snapshot(orjson.dumps(SAVED["snapshot"])))
    st = engine.inspect("checkout", "production")
    assert st is not None
    assert not st.deploy_live
    series = st.series[("us-east", "")]
    assert series.bindings == []  # the pack's one rule is deploy-only
    assert not series.deploy_bound
    decided = [[d.rule, d.action, d.at_ms, d.reason] for d in run(engine, _rest())]
    assert decided == SAVED["decisions_after"]

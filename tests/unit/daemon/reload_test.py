"""Hot reload: valid rules are swapped in, invalid ones keep the old rules and are audited."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import orjson

from guardian.daemon.reload import RuleReloader
from guardian.engine import Engine, load_rules
from guardian.metrics import GuardianMetrics
from tests.unit.daemon.pipeline_test import FakeSink

RULES = Path(__file__).resolve().parents[3] / "rules"


def _setup(tmp_path: Path) -> tuple[Path, Engine, FakeSink, GuardianMetrics, RuleReloader]:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests"))
    engine = Engine(load_rules(rules))
    sink, metrics = FakeSink(), GuardianMetrics()
    reloader = RuleReloader(rules, engine, sink, "audit", metrics, watch=False)
    return rules, engine, sink, metrics, reloader


async def test_valid_change_is_swapped_in_and_audited(tmp_path: Path) -> None:
    """A valid edit replaces the rules, counts a success and writes an audit record."""
    rules, _, sink, metrics, reloader = _setup(tmp_path)
    (rules / "alerts.yaml").unlink()
    assert await reloader.reload()
    audit = orjson.loads(sink.sent[-1][1])
    assert audit["event"] == "rules_reloaded"
    assert (
        metrics.registry.get_sample_value("guardian_rule_reloads_total", {"outcome": "success"})
        == 1
    )
    assert metrics.registry.get_sample_value("guardian_rules_loaded") == audit["details"]["rules"]


async def test_invalid_change_keeps_the_rules_in_force(tmp_path: Path) -> None:
    """A broken file is reported with file and line, counted, audited; old rules stay."""
    rules, engine, sink, metrics, reloader = _setup(tmp_path)
    before = engine.stats
    (rules / "broken.yaml").write_text("rules:\n  - name: x\n    action: explode\n")
    assert not await reloader.reload()
    audit = orjson.loads(sink.sent[-1][1])
    assert audit["event"] == "rules_reload_failed"
    assert "broken.yaml:" in audit["details"]["problems"]
    assert (
        metrics.registry.get_sample_value("guardian_rule_reloads_total", {"outcome": "failed"}) == 1
    )
    assert engine.stats == before


async def test_a_request_triggers_a_reload_in_the_running_loop(tmp_path: Path) -> None:
    """SIGHUP (``request``) makes the running reloader load the rules again."""
    _, _, sink, _, reloader = _setup(tmp_path)
    task = asyncio.create_task(reloader.run())
    reloader.request()
    for _ in range(100):
        if sink.sent:
            break
        await asyncio.sleep(0.02)
    task.cancel()
    assert orjson.loads(sink.sent[0][1])["event"] == "rules_reloaded"


async def test_file_changes_are_noticed(tmp_path: Path) -> None:
    """Editing a rule file triggers a reload without any signal."""
    rules, engine, sink, _, _ = _setup(tmp_path)
    reloader = RuleReloader(rules, engine, sink, "audit", GuardianMetrics(), watch=True)
    task = asyncio.create_task(reloader.run())
    await asyncio.sleep(0.5)  # let the watcher start
    (rules / "alerts.yaml").write_text((rules / "alerts.yaml").read_text() + "\n# tuned\n")
    for _ in range(150):
        if sink.sent:
            break
        await asyncio.sleep(0.05)
    task.cancel()
    assert sink.sent, "no reload after a file change"

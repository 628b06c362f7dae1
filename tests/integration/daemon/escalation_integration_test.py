"""A rollback that no executor confirms escalates after the (shortened) rollback timeout."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from guardian.config.settings import Settings
from tests.conftest import REPO
from tests.integration.daemon.daemon_integration_test import running
from tests.support.events import T0, deploy, traffic
from tests.support.kafka import produce_json, read_until
from tests.support.slack import FakeSlack
from tests.support.waiting import eventually

pytestmark = pytest.mark.kafka

SUBSCRIPTIONS = """\
subscriptions:
  - name: oncall
    match: {service: "*"}
    slack: ["#oncall"]
"""


async def test_unconfirmed_rollback_escalates_and_confirmation_resolves(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """No rolled_back event within the timeout → a critical escalation; a later one resolves."""
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules, ignore=shutil.ignore_patterns("tests"))
    pack = rules / "settings.yaml"
    pack.write_text(pack.read_text().replace("rollback_timeout: 10m", "rollback_timeout: 3s"))
    subscriptions = tmp_path / "subscriptions.yaml"
    subscriptions.write_text(SUBSCRIPTIONS)
    slack = FakeSlack()
    await slack.start()
    settings = settings_factory(
        rules=rules,
        subscriptions=subscriptions,
        slack_token=slack.token,
        slack_base_url=slack.base_url,
        notify_backoff_initial_s=0.1,
    )
    try:
        async with running(settings) as daemon:
            bootstrap = daemon.bootstrap_servers
            assert bootstrap
            await produce_json(bootstrap, settings.deploy_topic, [deploy(deploy_id="d-esc")])
            await produce_json(
                bootstrap, settings.metric_topic, traffic(seconds=90, error_rate=0.09)
            )
            await read_until(bootstrap, settings.command_topic, bool)
            await eventually(lambda: "ESCALATION" in str(slack.in_channel("#oncall")))
            audits = await read_until(
                bootstrap,
                settings.audit_topic,
                lambda seen: any(a.get("action") == "escalate" for a in seen),
            )
            await produce_json(
                bootstrap,
                settings.deploy_topic,
                [deploy("rolled_back", deploy_id="d-esc", at_ms=T0 + 200_000)],
            )
            posted = len(slack.in_channel("#oncall"))
            await eventually(lambda: len(slack.in_channel("#oncall")) > posted)
    finally:
        await slack.stop()
    escalations = [a for a in audits if a.get("action") == "escalate"]
    assert len(escalations) == 1
    assert escalations[0]["deploy_id"] == "d-esc"

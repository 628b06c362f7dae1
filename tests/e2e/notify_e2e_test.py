"""A bad canary end to end: one signed command, one Slack thread and one email, despite outages."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from guardian.config.settings import Settings
from guardian.wire.signing import verify
from tests.e2e.support import guardian_process, settings_env, wait_exit, wait_ready
from tests.support.events import T0, deploy, traffic
from tests.support.kafka import produce_json, read_until
from tests.support.slack import FakeSlack
from tests.support.smtp import SmtpServer
from tests.support.waiting import eventually

pytestmark = pytest.mark.kafka

SUBSCRIPTIONS = """\
subscriptions:
  - name: checkout-oncall
    match: {service: "checkout*", environment: production, severity: [critical, warning]}
    slack: ["#checkout-oncall"]
    email: ["oncall@checkout.example"]
"""


async def test_notifications_survive_slack_429_smtp_down_and_a_restart(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Decided while Slack rate-limits and SMTP is down, both arrive once after recovery."""
    slack = FakeSlack(retry_after_s=1)
    await slack.start()
    slack.rate_limited = True
    smtp = SmtpServer(tmp_path)  # not started: SMTP is down at decision time
    subscriptions = tmp_path / "subscriptions.yaml"
    subscriptions.write_text(SUBSCRIPTIONS)
    settings = settings_factory(
        subscriptions=subscriptions,
        slack_token=slack.token,
        slack_base_url=slack.base_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_username=smtp.username,
        smtp_password=smtp.password,
        smtp_starttls=True,
        smtp_ca_file=smtp.ca_file,
        smtp_from="guardian@example.test",
        signing_key="e2e-signing-key",
        notify_backoff_initial_s=0.1,
        notify_backoff_max_s=0.5,
        notify_send_timeout_s=3,
    )
    env = settings_env(settings)
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    try:
        with guardian_process(env, log_path=tmp_path / "a.log") as first:
            await wait_ready(settings.http_port, first)
            await produce_json(bootstrap, settings.deploy_topic, [deploy(deploy_id="d-notify")])
            stable = traffic(
                start_ms=T0 - 300_000,
                seconds=450,
                every_s=5,
                requests=100,
                error_rate=0.004,
                cohort="stable",
            )
            canary = traffic(seconds=150, error_rate=0.08, cohort="canary")
            await produce_json(
                bootstrap,
                settings.metric_topic,
                sorted([*stable, *canary], key=lambda e: int(e["timestamp"])),
            )
            commands = await read_until(bootstrap, settings.command_topic, bool)
            await eventually(lambda: slack.rejected > 0, timeout_s=40.0)
            first.send_signal(signal.SIGKILL)
            await wait_exit(first)

        slack.rate_limited = False
        smtp.start()
        with guardian_process(env, log_path=tmp_path / "b.log") as second:
            await wait_ready(settings.http_port, second)
            await eventually(
                lambda: (
                    bool(slack.in_channel("#checkout-oncall"))
                    and bool(smtp.to("oncall@checkout.example"))
                )
            )
            await asyncio.sleep(2.0)  # a duplicate would show up within this time
            second.send_signal(signal.SIGTERM)
            assert await wait_exit(second) == 0
    finally:
        await slack.stop()
        smtp.stop()

    assert len(commands) == 1
    command = commands[0]
    assert command["deploy_id"] == "d-notify"
    assert command["traffic"]["action"] == "set_weight"
    assert verify(command, b"e2e-signing-key")
    top_level = [m for m in slack.in_channel("#checkout-oncall") if not m.get("thread_ts")]
    assert len(top_level) == 1
    assert command["command_id"] in str(top_level[0])
    emails = smtp.to("oncall@checkout.example")
    assert len(emails) == 1
    assert emails[0]["Subject"].startswith("[ROLLBACK] checkout production 2.4.1 → 2.4.0")
    assert os.environ.get("GUARDIAN_SLACK_TOKEN") is None  # secrets stayed in the child
    for log in ("a.log", "b.log"):
        text = (tmp_path / log).read_text()
        assert slack.token not in text
        assert smtp.password not in text

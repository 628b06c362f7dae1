"""Subscriptions with Slack incoming webhooks instead of a bot token."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from guardian.config.settings import Settings
from guardian.metrics import GuardianMetrics
from guardian.notify.notifier import Notifier
from guardian.notify.options import NotifyOptions
from tests.integration.notify.conftest import make_topics
from tests.support.notices import entry, produce_entries
from tests.support.slack import FakeSlack
from tests.support.waiting import eventually


async def test_webhook_subscription_receives_the_rollback(
    notify_settings: Callable[..., Settings],
    notify_options: NotifyOptions,
    fake_slack: FakeSlack,
    kafka_bootstrap: str,
) -> None:
    """A rollback reaches a webhook subscription even with no bot token configured."""
    subscriptions = f"""\
subscriptions:
  - name: webhook-team
    match: {{service: checkout}}
    slack_webhook: ["{fake_slack.webhook_url("team")}"]
  - name: broken-webhook
    match: {{service: checkout}}
    slack_webhook: ["{fake_slack.webhook_url("gone")}"]
"""
    fake_slack.channel_errors["gone"] = "no_service"
    settings = notify_settings(subscriptions, slack_token=None)
    await make_topics(settings)
    metrics = GuardianMetrics(CollectorRegistry())
    await produce_entries(kafka_bootstrap, settings.notification_topic, [entry()])
    failed = metrics.notifications.labels(channel="slack", outcome="failed")
    async with Notifier(settings, kafka_bootstrap, metrics, notify_options) as notifier:
        task = asyncio.create_task(notifier.run())
        await eventually(
            lambda: bool(fake_slack.webhook_messages.get("team")) and failed._value.get() >= 1
        )
        task.cancel()
    (message,) = fake_slack.webhook_messages["team"]
    assert "[ROLLBACK] checkout production" in message["text"]
    assert fake_slack.messages == []

"""Never lost, never twice: Slack 429 and SMTP down at decision time, restarts in between."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from guardian.config.settings import Settings
from guardian.metrics import GuardianMetrics
from guardian.notify.notifier import Notifier
from guardian.notify.options import NotifyOptions
from tests.integration.notify.conftest import make_topics
from tests.support.kafka import read_until
from tests.support.notices import entry, produce_entries
from tests.support.slack import FakeSlack
from tests.support.smtp import SmtpServer
from tests.support.waiting import eventually


async def _run_until(notifier: Notifier, check: Callable[[], bool]) -> None:
    async with notifier:
        task = asyncio.create_task(notifier.run())
        try:
            await eventually(check)
        finally:
            task.cancel()


def _metrics() -> GuardianMetrics:
    return GuardianMetrics(CollectorRegistry())


async def test_outage_at_decision_time_delivers_once_after_recovery_and_restart(
    notify_settings: Callable[..., Settings],
    notify_options: NotifyOptions,
    fake_slack: FakeSlack,
    smtp_server: SmtpServer,
    kafka_bootstrap: str,
) -> None:
    """With Slack answering 429 and SMTP down, a new notifier delivers each message exactly once."""
    settings = notify_settings()
    await make_topics(settings)
    fake_slack.rate_limited = True
    await produce_entries(kafka_bootstrap, settings.notification_topic, [entry()])
    first = Notifier(settings, kafka_bootstrap, _metrics(), notify_options)
    await _run_until(first, lambda: fake_slack.rejected >= 2)
    assert fake_slack.messages == []
    fake_slack.rate_limited = False
    smtp_server.start()
    second = Notifier(settings, kafka_bootstrap, _metrics(), notify_options)
    await _run_until(second, lambda: bool(fake_slack.messages and smtp_server.messages))
    third = Notifier(settings, kafka_bootstrap, _metrics(), notify_options)
    await _run_until(third, lambda: True)
    await asyncio.sleep(1.0)
    assert len(fake_slack.messages) == 1
    assert len(smtp_server.messages) == 1


async def test_partial_delivery_survives_restart_without_duplicate(
    notify_settings: Callable[..., Settings],
    notify_options: NotifyOptions,
    fake_slack: FakeSlack,
    smtp_server: SmtpServer,
    kafka_bootstrap: str,
) -> None:
    """Slack delivered and SMTP down at stop: after restart only the email is sent, in order."""
    settings = notify_settings()
    await make_topics(settings)
    await produce_entries(kafka_bootstrap, settings.notification_topic, [entry()])
    metrics = _metrics()
    first = Notifier(settings, kafka_bootstrap, metrics, notify_options)
    retries = metrics.notifications.labels(channel="email", outcome="retry")
    await _run_until(first, lambda: bool(fake_slack.messages) and retries._value.get() >= 2)
    smtp_server.start()
    later = entry(deploy_id="d-9000")
    await produce_entries(kafka_bootstrap, settings.notification_topic, [later])
    second = Notifier(settings, kafka_bootstrap, _metrics(), notify_options)
    await _run_until(second, lambda: len(smtp_server.messages) >= 2)
    await asyncio.sleep(0.5)
    assert len(fake_slack.messages) == 2
    assert [m["Subject"].split(":")[0] for m in smtp_server.messages] == [
        "[ROLLBACK] checkout production 2.4.1 → 2.4.0"
    ] * 2


async def test_permanent_errors_are_audited_counted_and_skipped(
    notify_settings: Callable[..., Settings],
    notify_options: NotifyOptions,
    fake_slack: FakeSlack,
    smtp_server: SmtpServer,
    kafka_bootstrap: str,
) -> None:
    """channel_not_found and a refused recipient are audited once each and the outbox moves on."""
    smtp_server.start()
    fake_slack.channel_errors["#checkout-oncall"] = "channel_not_found"
    smtp_server.refused.add("oncall@checkout.example")
    settings = notify_settings()
    await make_topics(settings)
    metrics = _metrics()
    await produce_entries(
        kafka_bootstrap, settings.notification_topic, [entry(), entry(deploy_id="d-2")]
    )
    failed = [metrics.notifications.labels(channel=c, outcome="failed") for c in ("slack", "email")]
    await _run_until(
        Notifier(settings, kafka_bootstrap, metrics, notify_options),
        lambda: all(f._value.get() >= 2 for f in failed),
    )
    audits = await read_until(kafka_bootstrap, settings.audit_topic, lambda seen: len(seen) >= 4)
    assert sorted(a["details"]["destination"] for a in audits) == [
        "email:oncall@checkout.example",
        "email:oncall@checkout.example",
        "slack:#checkout-oncall",
        "slack:#checkout-oncall",
    ]
    assert all(a["event"] == "notification_failed" for a in audits)
    assert "channel_not_found" in str(audits)
    assert fake_slack.token not in str(audits)
    assert smtp_server.password not in str(audits)
    assert metrics.notifications.labels(channel="slack", outcome="retry")._value.get() == 0

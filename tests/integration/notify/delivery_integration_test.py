"""The notifier on a real broker: Slack threads, emails over STARTTLS+AUTH, resolutions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from guardian.config.settings import Settings
from guardian.metrics import GuardianMetrics
from guardian.notify.notice import confirmation_entry
from guardian.notify.notifier import Notifier
from guardian.notify.options import NotifyOptions
from tests.integration.notify.conftest import make_topics
from tests.support.notices import T0, deploy, entry, produce_entries
from tests.support.slack import FakeSlack
from tests.support.smtp import SmtpServer
from tests.support.waiting import eventually

CHANNEL = "#checkout-oncall"
ADDRESS = "oncall@checkout.example"


async def test_rollback_reaches_slack_thread_and_email_then_resolution(
    notify_settings: Callable[..., Settings],
    notify_options: NotifyOptions,
    fake_slack: FakeSlack,
    smtp_server: SmtpServer,
    kafka_bootstrap: str,
) -> None:
    """A rollback posts one card and one email, a repeat stays quiet, the confirmation resolves."""
    smtp_server.start()
    settings = notify_settings()
    await make_topics(settings)
    metrics = GuardianMetrics(CollectorRegistry())
    first = entry()
    repeat = entry(at_ms=T0 + 300_000, observed=0.09)
    done = confirmation_entry(deploy(), status="rolled_back", at_ms=T0 + 400_000, now_ms=T0)
    await produce_entries(
        kafka_bootstrap, settings.notification_topic, [first, first, repeat, done]
    )
    async with Notifier(settings, kafka_bootstrap, metrics, notify_options) as notifier:
        task = asyncio.create_task(notifier.run())
        await eventually(lambda: len(fake_slack.messages) >= 2 and len(smtp_server.messages) >= 2)
        await asyncio.sleep(0.5)
        task.cancel()
    opening, resolution = fake_slack.in_channel(CHANNEL)
    assert opening["thread_ts"] is None
    assert resolution["thread_ts"] == opening["ts"]
    assert opening["text"] == ("[ROLLBACK] checkout production 2.4.1 → 2.4.0: error rate 8.3% > 5%")
    card = str(opening["blocks"])
    for fact in (
        "checkout",
        "production",
        "error-rate-critical",
        "8.3%",
        "0.4%",
        "rb-",
        "What happens next",
    ):
        assert fact in card
    assert "rolled back to 2.4.0" in resolution["text"]
    mails = smtp_server.to(ADDRESS)
    assert [m["Subject"] for m in mails] == [
        "[ROLLBACK] checkout production 2.4.1 → 2.4.0: error rate 8.3% > 5%",
        "[RESOLVED] checkout production: deploy rolled back to 2.4.0",
    ]
    assert mails[1]["In-Reply-To"] == mails[0]["Message-ID"]
    body = mails[0].get_body(preferencelist=("html",))
    assert body is not None
    assert "<table>" in body.get_content()
    assert len(fake_slack.messages) == 2
    assert len(smtp_server.messages) == 2

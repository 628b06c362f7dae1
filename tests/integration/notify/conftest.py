"""Fixtures of the notifier's integration tests: fake Slack, real SMTP, subscriptions, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from guardian.config.settings import Settings
from guardian.kafka.admin import ensure_topics
from guardian.notify.options import NotifyOptions
from tests.support.slack import FakeSlack
from tests.support.smtp import SmtpServer

SUBSCRIPTIONS = """\
subscriptions:
  - name: checkout-oncall
    match: {service: "checkout*", environment: production, severity: [critical, warning]}
    slack: ["#checkout-oncall"]
    email: ["oncall@checkout.example"]
"""


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    """A running fake Slack API."""
    slack = FakeSlack()
    await slack.start()
    yield slack
    await slack.stop()


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    """A real SMTP server (STARTTLS + AUTH), not yet started."""
    server = SmtpServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def notify_settings(
    settings_factory: Callable[..., Settings],
    fake_slack: FakeSlack,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> Callable[..., Settings]:
    """Settings pointing the notifier at the fakes, with a subscriptions file."""

    def make(subscriptions: str | None = SUBSCRIPTIONS, **overrides: Any) -> Settings:
        path: Path | None = None
        if subscriptions is not None:
            path = tmp_path / "subscriptions.yaml"
            path.write_text(subscriptions)
        values: dict[str, Any] = {
            "subscriptions": path,
            "slack_token": fake_slack.token,
            "slack_base_url": fake_slack.base_url,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_server.port,
            "smtp_username": smtp_server.username,
            "smtp_password": smtp_server.password,
            "smtp_starttls": True,
            "smtp_from": "guardian@example.test",
        }
        values.update(overrides)
        return settings_factory(**values)

    return make


@pytest.fixture
def notify_options(smtp_server: SmtpServer) -> NotifyOptions:
    """Short backoff and timeouts so outage tests stay fast."""
    return NotifyOptions(
        backoff_initial_s=0.05,
        backoff_max_s=0.3,
        send_timeout_s=3,
        poll_timeout_ms=50,
        smtp_ca_file=smtp_server.ca_file,
    )


async def make_topics(settings: Settings) -> None:
    """Create the test's topics (what the daemon does at start)."""
    await ensure_topics(settings, str(settings.bootstrap_servers))

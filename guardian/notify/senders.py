"""Slack (Web API and incoming webhooks) and SMTP senders: the only slack_sdk/aiosmtplib users.

Each sender does one attempt and translates every third-party failure into
``DeliveryError(retriable=..., retry_after_s=...)``: 429 with its
``Retry-After``, connection problems and 5xx are retriable; ``invalid_auth``,
``channel_not_found`` and similar, or an SMTP 5xx (recipient refused,
authentication failed) are permanent. Error messages never include tokens,
passwords or webhook URLs. Retrying is ``retry``'s job.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate
from pathlib import Path

import aiohttp
import aiosmtplib
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from guardian.config.settings import Settings
from guardian.notify.render import EmailMessage, SlackMessage
from guardian.notify.retry import DeliveryError

# ok:false errors that another attempt can cure; every other error is permanent.
_SLACK_RETRIABLE = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def _retry_after(headers: Mapping[str, object] | None) -> float | None:
    """Seconds from a ``Retry-After`` header (any case), or None when absent or unreadable."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(str(value)))
            except ValueError:
                return None
    return None


class SlackSender:
    """Posts to Slack with the bot token (``chat.postMessage``) or to webhook URLs."""

    def __init__(self, token: str | None, base_url: str, timeout_s: float) -> None:
        self._token = token
        self._base_url = base_url
        self._timeout = timeout_s
        self._session: aiohttp.ClientSession | None = None

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def post(self, channel: str, message: SlackMessage, thread_ts: str | None) -> str | None:
        """Post to a channel (a reply when ``thread_ts``); return the message ``ts``."""
        if not self._token:
            raise DeliveryError("no Slack token configured (GUARDIAN_SLACK_TOKEN)", retriable=False)
        client = AsyncWebClient(
            token=self._token,
            base_url=self._base_url,
            timeout=int(self._timeout),
            session=self._require_session(),
            retry_handlers=[],
        )
        try:
            response = await client.chat_postMessage(
                channel=channel, text=message.text, blocks=message.blocks, thread_ts=thread_ts
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            status = exc.response.status_code
            retriable = status == 429 or status >= 500 or error in _SLACK_RETRIABLE
            raise DeliveryError(
                f"Slack chat.postMessage to {channel} failed: {error} (HTTP {status})",
                retriable=retriable,
                retry_after_s=_retry_after(exc.response.headers) if status == 429 else None,
            ) from None
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise DeliveryError(
                f"Slack unreachable: {type(exc).__name__}", retriable=True
            ) from None
        ts = response.get("ts")
        return ts if isinstance(ts, str) else None

    async def webhook(self, url: str, label: str, message: SlackMessage) -> None:
        """Post to an incoming webhook (no threads: webhooks return no ``ts``)."""
        client = AsyncWebhookClient(
            url, timeout=int(self._timeout), session=self._require_session(), retry_handlers=[]
        )
        try:
            response = await client.send(text=message.text, blocks=message.blocks)
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise DeliveryError(
                f"Slack webhook {label} unreachable: {type(exc).__name__}", retriable=True
            ) from None
        status = response.status_code
        if status == 200:
            return
        raise DeliveryError(
            f"Slack webhook {label} failed: {response.body[:200]} (HTTP {status})",
            retriable=status == 429 or status >= 500,
            retry_after_s=_retry_after(response.headers) if status == 429 else None,
        )

    async def close(self) -> None:
        """Close the HTTP session; safe to call twice."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class EmailSender:
    """Sends one email per recipient through the configured SMTP server."""

    def __init__(self, settings: Settings, timeout_s: float, ca_file: Path | None = None) -> None:
        self._settings = settings
        self._timeout = timeout_s
        self._ca_file = ca_file

    async def send(self, recipient: str, message: EmailMessage) -> None:
        """Deliver one message; raise ``DeliveryError`` (5xx permanent, the rest retriable)."""
        s = self._settings
        if not s.smtp_host:
            raise DeliveryError("no SMTP host configured (GUARDIAN_SMTP_HOST)", retriable=False)
        mime = MimeMessage()
        mime["Subject"] = message.subject
        mime["From"] = s.smtp_from
        mime["To"] = recipient
        mime["Date"] = formatdate(localtime=False)
        mime["Message-ID"] = message.message_id
        if message.in_reply_to:
            mime["In-Reply-To"] = message.in_reply_to
            mime["References"] = message.in_reply_to
        mime.set_content(message.text)
        mime.add_alternative(message.html, subtype="html")
        context = ssl.create_default_context(cafile=str(self._ca_file) if self._ca_file else None)
        try:
            await aiosmtplib.send(
                mime,
                sender=s.smtp_from,
                recipients=[recipient],
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                start_tls=s.smtp_starttls,
                tls_context=context if s.smtp_starttls else None,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [e.code for e in exc.recipients]
            raise DeliveryError(
                f"SMTP refused recipient {recipient} ({codes})",
                retriable=all(400 <= c < 500 for c in codes) and bool(codes),
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP error {exc.code} sending to {recipient}: {exc.message[:200]}",
                retriable=not 500 <= exc.code < 600,
            ) from None
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"SMTP server unreachable: {type(exc).__name__}", retriable=True
            ) from None

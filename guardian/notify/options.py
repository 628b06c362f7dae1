"""Tuning knobs of the notifier, with defaults; candidates for ``Settings`` fields.

The operator-facing ones are settings (``GUARDIAN_NOTIFY_*``, ``GUARDIAN_SMTP_CA_FILE``);
``options_from_settings`` maps them, and tests build an instance directly.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from guardian.config.settings import Settings


class NotifyOptions(BaseModel):
    """How the notifier groups, repeats, retries and summarises."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repeat_interval_s: float = Field(
        4 * 3600.0, ge=0, description="Least event time between two posts of a firing incident"
    )
    backoff_initial_s: float = Field(1.0, gt=0, description="First retry delay of a delivery")
    backoff_max_s: float = Field(60.0, gt=0, description="Longest delay between two retries")
    backoff_multiplier: float = Field(2.0, ge=1, description="Growth of the delay per attempt")
    backoff_jitter: float = Field(
        0.2, ge=0, le=1, description="Random share added to or taken from each delay"
    )
    storm_threshold: int = Field(
        5, ge=1, description="New incidents of distinct services within the window before a storm"
    )
    storm_window_s: float = Field(60.0, gt=0, description="Window (event time) of storm detection")
    send_timeout_s: float = Field(15.0, gt=0, description="Timeout of one Slack or SMTP call")
    poll_timeout_ms: int = Field(200, ge=1, description="Longest wait for new outbox entries")
    max_in_flight: int = Field(
        1000, ge=1, description="Outbox entries held undelivered before the notifier stops reading"
    )
    smtp_ca_file: Path | None = Field(
        None, description="CA bundle to verify the SMTP server (STARTTLS); unset = system CAs"
    )
    dedup_memory: int = Field(
        256, ge=1, description="Delivered notification ids remembered per incident and destination"
    )


def options_from_settings(settings: Settings) -> NotifyOptions:
    """The notifier's options as configured by the operator (``GUARDIAN_NOTIFY_*``)."""
    return NotifyOptions(
        repeat_interval_s=settings.notify_repeat_interval_s,
        backoff_initial_s=settings.notify_backoff_initial_s,
        backoff_max_s=settings.notify_backoff_max_s,
        storm_threshold=settings.notify_storm_threshold,
        storm_window_s=settings.notify_storm_window_s,
        send_timeout_s=settings.notify_send_timeout_s,
        smtp_ca_file=settings.smtp_ca_file,
    )

"""Rendering: one-line subjects, Block Kit cards, emails, escalations; backoff schedule."""

# ruff: noqa: E501 - expected messages are compared whole, one table row per line

from __future__ import annotations

import random

import pytest

from guardian.notify.grouping import Plan
from guardian.notify.notice import parse_entry
from guardian.notify.options import NotifyOptions
from guardian.notify.render import email_message, format_value, slack_message, subject
from guardian.notify.retry import DeliveryError, backoff_delay, with_retries
from guardian.notify.subscriptions import Destination
from tests.support.notices import entry

DEST = Destination("slack", "#c", "slack:#c")


@pytest.mark.parametrize(
    ("kwargs", "kind", "expected"),
    [
        ({}, "open", "[ROLLBACK] checkout production 2.4.1 → 2.4.0: error rate 8.3% > 5%"),
        ({"action": "escalate"}, "open", "[ESCALATION] no rollback confirmation for checkout production 2.4.1 → 2.4.0"),
        ({"action": "notify", "severity": "warning"}, "open", "[ALERT] checkout production 2.4.1: error rate 8.3% > 5%"),
        ({"action": "pause", "observed": 0.01}, "repeat", "[REPEAT] [PAUSE] checkout production 2.4.1: error rate 1% < 5%"),
        ({"state": "resolved"}, "resolve", "[RESOLVED] checkout production 2.4.1 → 2.4.0: error-rate-critical (error rate 8.3% > 5%)"),
    ],
)  # fmt: skip
def test_subject_says_what_happened_in_one_line(
    kwargs: dict[str, str], kind: str, expected: str
) -> None:
    """Subjects name the action, service, environment, versions and the comparison."""
    plan = Plan(kind, DEST, parse_entry(entry(**kwargs)), "i")  # type: ignore[arg-type]
    assert subject(plan) == expected


def test_escalation_card_is_critical_and_says_what_to_do() -> None:
    """An escalation card names the unconfirmed command and tells the reader to act."""
    notice = parse_entry(entry(action="escalate"))
    text = str(slack_message(Plan("open", DEST, notice, "i")).blocks)
    assert "No executor confirmed" in text
    assert ":rotating_light:" in text


def test_storm_summary_and_email_quietness() -> None:
    """A storm summary lists services; storm items send no email; replies thread by header."""
    notice = parse_entry(entry())
    storm = Plan("storm", DEST, notice, "i", storm_services=tuple("abcdefg"))
    assert subject(storm) == "[STORM] 7 services firing at once: a, b, c, d, e (+2)"
    assert len(slack_message(storm).blocks) == 2
    assert email_message(Plan("storm_item", DEST, notice, "i")) is None
    repeat = email_message(Plan("repeat", DEST, notice, "i", suppressed=3))
    opening = email_message(Plan("open", DEST, notice, "i"))
    assert repeat is not None
    assert opening is not None
    assert repeat.in_reply_to == opening.message_id
    assert "3 similar" in str(slack_message(Plan("repeat", DEST, notice, "i", suppressed=3)).blocks)


@pytest.mark.parametrize(
    ("metric", "value", "shown"),
    [("error_rate", 0.083, "8.3%"), ("latency_p95_ms", 412.0, "412ms"), ("cpu", 3, "3"), ("x", None, "n/a"), ("x", "fail", "fail")],
)  # fmt: skip
def test_values_are_formatted_for_people(metric: str, value: object, shown: str) -> None:
    """Ratios as percentages, milliseconds with a unit, strings as given."""
    assert format_value(metric, value) == shown


def test_backoff_grows_exponentially_within_jitter_and_cap() -> None:
    """Delays double from the initial one, stay within ±jitter and never pass the cap."""
    options = NotifyOptions(backoff_initial_s=1, backoff_max_s=10, backoff_jitter=0.2)
    rng = random.Random(7)
    delays = [backoff_delay(options, n, rng) for n in range(6)]
    for n, delay in enumerate(delays):
        base = min(10, 2**n)
        assert base * 0.8 <= delay <= min(10, base * 1.2)


async def test_retries_honour_retry_after_and_stop_at_permanent_errors() -> None:
    """Retry-After replaces the backoff; a permanent error is raised without retrying."""
    slept: list[float] = []
    errors = [
        DeliveryError("429", retriable=True, retry_after_s=7),
        DeliveryError("down", retriable=True),
    ]

    async def call() -> str:
        if errors:
            raise errors.pop(0)
        return "ts"

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    options = NotifyOptions(backoff_initial_s=0.5, backoff_jitter=0)
    seen: list[int] = []
    result = await with_retries(
        call, options, on_retry=lambda _e, n, _d: seen.append(n), sleep=sleep
    )
    assert (result, slept, seen) == ("ts", [7, 1.0], [0, 1])

    async def refused() -> str:
        raise DeliveryError("channel_not_found", retriable=False)

    with pytest.raises(DeliveryError, match="channel_not_found"):
        await with_retries(refused, options, on_retry=lambda *_: None, sleep=sleep)

"""Outbox entries that are not usable are rejected with a reason, never crash the notifier."""

from __future__ import annotations

from typing import Any

import pytest

from guardian.errors import DecodeError
from guardian.notify.notice import parse_entry, parse_time_ms
from tests.support.notices import entry

GOOD = entry()


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"kind": "other"},
        {**GOOD, "deploy": "x"},
        {**GOOD, "decision": None},
        {**GOOD, "command": "x"},
        {**GOOD, "notification_id": 3},
        {**GOOD, "decision": {**GOOD["decision"], "at": "yesterday"}},
        {**GOOD, "decision": {**GOOD["decision"], "at": True}},
        {**GOOD, "decision": {**GOOD["decision"], "at": None}},
        {"kind": "deploy_confirmation", "status": "rolled_back", "deploy": None},
    ],
)
def test_bad_entries_raise_decode_error(bad: Any) -> None:
    """Each malformed entry is a DecodeError."""
    with pytest.raises(DecodeError):
        parse_entry(bad)


def test_epoch_milliseconds_are_accepted() -> None:
    """Timestamps may be epoch milliseconds."""
    assert parse_time_ms(1_795_478_400_000) == 1_795_478_400_000

"""Grouping policy: threads per deploy+rule, dedup, repeat interval, resolution, storms."""

from __future__ import annotations

from typing import Any

from guardian.notify.grouping import Grouper, IncidentState
from guardian.notify.notice import Notice, confirmation_entry, parse_entry
from guardian.notify.options import NotifyOptions
from guardian.notify.subscriptions import Destination
from tests.support.notices import T0, deploy, entry

SLACK = Destination("slack", "#c", "slack:#c")
EMAIL = Destination("email", "a@b.c", "email:a@b.c")
OPTIONS = NotifyOptions(repeat_interval_s=600, storm_threshold=2, storm_window_s=60)


def notice(**kwargs: Any) -> Notice:
    return parse_entry(entry(**kwargs))


def deliver(grouper: Grouper, dest: Destination, n: Notice) -> list[tuple[str, str | None]]:
    """Plan and record every message, with fake ts; return (kind, thread) pairs."""
    out: list[tuple[str, str | None]] = []
    for i, plan in enumerate(grouper.plan(dest, n)):
        thread = grouper.thread_for(plan)
        out.append((plan.kind, thread))
        grouper.record(plan, f"ts-{n.at_ms}-{i}")
    return out


def test_first_event_opens_later_ones_repeat_in_thread_after_interval() -> None:
    """A redelivery posts nothing, an early repeat is held, a due repeat replies in the thread."""
    g = Grouper(OPTIONS)
    first = notice()
    assert deliver(g, SLACK, first) == [("open", None)]
    assert deliver(g, SLACK, first) == []
    assert deliver(g, SLACK, notice(at_ms=first.at_ms + 60_000)) == []
    plans = g.plan(SLACK, notice(at_ms=first.at_ms + 700_000))
    assert [(p.kind, p.thread_ts, p.suppressed) for p in plans] == [
        ("repeat", f"ts-{first.at_ms}-0", 1)
    ]


def test_changed_action_is_an_update_and_resolution_closes_then_reopens() -> None:
    """A new action posts at once; resolved replies; a later firing opens a fresh thread."""
    g = Grouper(OPTIONS)
    deliver(g, SLACK, notice(action="notify", severity="warning"))
    assert deliver(g, SLACK, notice(at_ms=T0 + 300_000)) == [("update", f"ts-{T0 + 252_345}-0")]
    resolved = notice(state="resolved", at_ms=T0 + 400_000)
    assert deliver(g, SLACK, resolved) == [("resolve", f"ts-{T0 + 252_345}-0")]
    assert deliver(g, SLACK, resolved) == []
    assert deliver(g, SLACK, notice(state="resolved", at_ms=T0 + 500_000)) == []
    assert deliver(g, SLACK, notice(at_ms=T0 + 900_000)) == [("open", None)]


def test_confirmation_resolves_every_open_incident_of_the_deploy() -> None:
    """A rolled_back confirmation replies in each of the deploy's threads once."""
    g = Grouper(OPTIONS)
    deliver(g, SLACK, notice(rule="a"))
    deliver(g, SLACK, notice(rule="b"))
    deliver(g, SLACK, notice(rule="c", deploy_id="other"))
    done = parse_entry(confirmation_entry(deploy(), status="rolled_back", at_ms=T0, now_ms=T0))
    assert sorted(deliver(g, SLACK, done)) == [
        ("resolve", f"ts-{T0 + 252_345}-0"),
        ("resolve", f"ts-{T0 + 252_345}-0"),
    ]
    assert deliver(g, SLACK, done) == []


def test_storm_posts_one_summary_then_replies_and_keeps_email_quiet() -> None:
    """Beyond the threshold, new incidents go under one summary (Slack) or nowhere (email)."""
    g = Grouper(OPTIONS)
    for i, service in enumerate(["a", "b"]):
        assert deliver(g, SLACK, notice(deploy_id=None, service=service, at_ms=T0 + i)) == [
            ("open", None)
        ]
        deliver(g, EMAIL, notice(deploy_id=None, service=service, at_ms=T0 + i))
    storm = deliver(g, SLACK, notice(deploy_id=None, service="c", at_ms=T0 + 2))
    assert storm == [("storm", None), ("storm_item", f"ts-{T0 + 2}-0")]
    assert deliver(g, SLACK, notice(deploy_id=None, service="d", at_ms=T0 + 3)) == [
        ("storm_item", f"ts-{T0 + 2}-0")
    ]
    deliver(g, EMAIL, notice(deploy_id=None, service="c", at_ms=T0 + 2))
    quiet = notice(deploy_id=None, service="c", at_ms=T0 + 10_000_000)
    assert deliver(g, EMAIL, quiet) == []
    assert (
        deliver(g, EMAIL, notice(deploy_id=None, service="c", state="resolved", at_ms=T0 + 5)) == []
    )
    after = notice(deploy_id=None, service="e", at_ms=T0 + 10_000_000)
    assert deliver(g, SLACK, after) == [("open", None)]


def test_state_round_trips_through_its_dict_form() -> None:
    """Saved incident state restores thread and dedup memory."""
    g = Grouper(OPTIONS)
    first = notice()
    deliver(g, SLACK, first)
    ((dkey, incident), state) = next(iter(g.incidents.items()))
    again = Grouper(OPTIONS)
    again.restore(dkey, incident, IncidentState.from_dict({**state.to_dict(), "extra": 1}))
    assert deliver(again, SLACK, first) == []
    assert deliver(again, SLACK, notice(state="resolved")) == [("resolve", f"ts-{first.at_ms}-0")]

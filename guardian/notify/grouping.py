"""Alertmanager-grade grouping, pure: what (if anything) to post for a notice at one destination.

State is kept per destination (a Slack channel, webhook or address), so one
destination's outage never changes what another one receives:

- one **incident** per deploy and rule: the first firing notice opens it (a
  top-level Slack message whose ``ts`` later notices reply under), later
  notices are thread replies at most every ``repeat_interval_s`` (event time)
  unless the action or severity changed, and a ``resolved`` notice or a
  deploy confirmation posts the resolution;
- **dedup** by ``notification_id`` per incident: a redelivered entry posts nothing;
- **storm**: when more than ``storm_threshold`` distinct services open incidents
  within ``storm_window_s``, one summary is posted and further new incidents of
  the storm become replies under it (Slack) or are left out (email, marked
  ``quiet`` so their repeats and resolution stay quiet too).

``plan`` decides; ``record`` applies a delivery's outcome (the Slack ``ts``);
nothing here does I/O or reads a clock — time is the notice's event time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from guardian.notify.notice import Notice
from guardian.notify.options import NotifyOptions
from guardian.notify.subscriptions import Destination

PlanKind = Literal["open", "update", "repeat", "resolve", "storm", "storm_item"]


@dataclass
class IncidentState:
    """What a destination has been told about one incident."""

    thread_ts: str | None = None
    last_post_ms: int | None = None
    action: str = ""
    severity: str = ""
    suppressed: int = 0
    resolved: bool = False
    quiet: bool = False
    delivered: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, for the state topic."""
        return {
            "thread_ts": self.thread_ts,
            "last_post_ms": self.last_post_ms,
            "action": self.action,
            "severity": self.severity,
            "suppressed": self.suppressed,
            "resolved": self.resolved,
            "quiet": self.quiet,
            "delivered": list(self.delivered),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IncidentState:
        """Inverse of ``to_dict``; unknown keys are ignored."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True, slots=True)
class Plan:
    """One message to send to one destination, and where it belongs."""

    kind: PlanKind
    destination: Destination
    notice: Notice
    incident: str
    thread_ts: str | None = None
    suppressed: int = 0
    storm_services: tuple[str, ...] = ()


@dataclass
class _Storm:
    opens: deque[tuple[int, str]] = field(default_factory=deque)
    until_ms: int = -1
    thread_ts: str | None = None
    services: list[str] = field(default_factory=list)


def dest_key(destination: Destination) -> str:
    """Stable identity of a destination, used in state keys."""
    return f"{destination.kind}:{destination.target}"


class Grouper:
    """Per-destination incident state and the policy that turns notices into plans."""

    def __init__(self, options: NotifyOptions) -> None:
        self._options = options
        self.incidents: dict[tuple[str, str], IncidentState] = {}
        self._storms: dict[str, _Storm] = {}

    def restore(self, destination_key: str, incident: str, state: IncidentState) -> None:
        """Load state saved by an earlier notifier (thread ts, delivered ids)."""
        self.incidents[(destination_key, incident)] = state

    def plan(self, destination: Destination, notice: Notice) -> list[Plan]:  # noqa: PLR0911 - one return per policy branch
        """The messages this notice means for this destination (often one, maybe none)."""
        dkey = dest_key(destination)
        if notice.kind == "confirmation":
            return [
                Plan("resolve", destination, notice, incident, state.thread_ts)
                for (d, incident), state in self.incidents.items()
                if d == dkey
                and incident.startswith(f"{notice.deploy_id}|")
                and not state.resolved
                and notice.notification_id not in state.delivered
                and not (state.quiet and destination.kind == "email")
            ]
        incident = notice.incident_key
        state = self.incidents.get((dkey, incident))
        if state is not None and notice.notification_id in state.delivered:
            return []
        if notice.state == "resolved":
            if state is None or state.resolved or (state.quiet and destination.kind == "email"):
                return []
            return [Plan("resolve", destination, notice, incident, state.thread_ts)]
        if state is None or state.resolved:
            return self._open(destination, dkey, notice, incident)
        if state.action != notice.action or state.severity != notice.severity:
            return [Plan("update", destination, notice, incident, state.thread_ts)]
        due = state.last_post_ms is None or (
            notice.at_ms - state.last_post_ms >= self._options.repeat_interval_s * 1000
        )
        if not due or (state.quiet and destination.kind == "email"):
            state.suppressed += 1
            return []
        return [Plan("repeat", destination, notice, incident, state.thread_ts, state.suppressed)]

    def _open(
        self, destination: Destination, dkey: str, notice: Notice, incident: str
    ) -> list[Plan]:
        storm = self._storms.setdefault(dkey, _Storm())
        window_ms = int(self._options.storm_window_s * 1000)
        storm.opens.append((notice.at_ms, notice.service))
        while storm.opens and storm.opens[0][0] < notice.at_ms - window_ms:
            storm.opens.popleft()
        services = list(dict.fromkeys(service for _, service in storm.opens))
        if notice.at_ms <= storm.until_ms:
            storm.until_ms = notice.at_ms + window_ms
            if notice.service not in storm.services:
                storm.services.append(notice.service)
            return [Plan("storm_item", destination, notice, incident, storm.thread_ts)]
        if len(services) > self._options.storm_threshold:
            storm.until_ms = notice.at_ms + window_ms
            storm.services = services
            storm.thread_ts = None
            return [
                Plan("storm", destination, notice, incident, storm_services=tuple(services)),
                Plan("storm_item", destination, notice, incident),
            ]
        return [Plan("open", destination, notice, incident)]

    def thread_for(self, plan: Plan) -> str | None:
        """Where a plan's message belongs: its incident's thread, or the storm summary's."""
        if plan.kind == "storm_item" and plan.thread_ts is None:
            storm = self._storms.get(dest_key(plan.destination))
            return storm.thread_ts if storm else None
        return plan.thread_ts

    def record(self, plan: Plan, ts: str | None) -> IncidentState:
        """Apply a finished delivery (``ts`` of the posted message); return the new state."""
        dkey = dest_key(plan.destination)
        key = (dkey, plan.incident)
        notice = plan.notice
        state = self.incidents.get(key)
        if plan.kind == "storm":
            self._storms[dkey].thread_ts = ts
            return state or IncidentState()
        if state is None or (plan.kind in ("open", "storm_item") and state.resolved):
            state = IncidentState()
            self.incidents[key] = state
        if plan.kind == "open":
            state.thread_ts = ts
        elif plan.kind == "storm_item":
            state.thread_ts = self.thread_for(plan)
            state.quiet = True
        if plan.kind == "resolve":
            state.resolved = True
        else:
            state.last_post_ms = notice.at_ms
            state.action, state.severity = notice.action, notice.severity
            state.suppressed = 0
        state.delivered.append(notice.notification_id)
        del state.delivered[: -self._options.dedup_memory]
        return state

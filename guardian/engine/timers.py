"""What is due later in event time: one small type per kind of timer, and the queue of them.

A timer is a frozen value naming what it is about: ``Escalation`` (a rollback
that no executor has confirmed yet), ``BakeEnd`` (a completed deploy stops
being watched) and ``NoDataCheck`` (a rule that alerts when its series falls
silent). ``TimerQueue`` keeps them ordered by due time and is the only
holder of timers; it forgets every timer of a service when that service is
forgotten (matched by its (service, environment) key).

Escalations sit on a queue of their own because they are the only timers an
idle tick may fire: with no input, a rollback that nobody confirms must still
escalate on the wall clock, while a bake end or a silence check fired ahead
of the events would judge those events differently from a replay of them.

Limits: pure data and ``heapq``; what a timer does when it fires is
``lifecycle.Lifecycle``'s business.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from guardian.engine.state import Binding, DeployState, ServiceKey, ServiceState

NEVER = 1 << 62  # the due time of an empty queue


@dataclass(frozen=True, slots=True)
class Escalation:
    """Escalate ``deploy``'s rollback if no rolled_back/failed event came in time."""

    service: ServiceState
    deploy: DeployState


@dataclass(frozen=True, slots=True)
class BakeEnd:
    """``deploy`` completed: its bake time is over, deploy rules stop watching it."""

    service: ServiceState
    deploy: DeployState


@dataclass(frozen=True, slots=True)
class NoDataCheck:
    """Check whether ``binding``'s series has been silent for the rule's ``no_data.after``."""

    service: ServiceState
    binding: Binding


Timer = Escalation | BakeEnd | NoDataCheck
# (due ms, insertion number, timer): the number keeps equal due times in push order.
_Entry = tuple[int, int, Timer]


class TimerQueue:
    """Every pending timer, ordered by due time (ties in the order they were set)."""

    __slots__ = ("_escalations", "_others", "_seq", "next_due")

    def __init__(self) -> None:
        self._escalations: list[_Entry] = []
        self._others: list[_Entry] = []
        self._seq = 0
        # The earliest due time of any timer (NEVER when none): a cheap test on the hot path.
        self.next_due = NEVER

    def __len__(self) -> int:
        return len(self._escalations) + len(self._others)

    def push(self, due: int, timer: Timer) -> None:
        """Set ``timer`` to fire once event time reaches ``due``."""
        self._seq += 1
        heap = self._escalations if type(timer) is Escalation else self._others
        heapq.heappush(heap, (due, self._seq, timer))
        self.next_due = min(self.next_due, due)

    def pop(self, now_ms: int, *, escalations_only: bool = False) -> tuple[int, Timer] | None:
        """Remove and return the earliest timer due at or before ``now_ms``, or None."""
        escalations, others = self._escalations, self._others
        heap = escalations if escalations and escalations[0][0] <= now_ms else None
        other_due = not escalations_only and others and others[0][0] <= now_ms
        if other_due and (heap is None or others[0][:2] < escalations[0][:2]):
            heap = others
        if heap is None:
            return None
        due, _, timer = heapq.heappop(heap)
        self._recompute()
        return due, timer

    def forget(self, keys: Iterable[ServiceKey]) -> None:
        """Drop every timer of these services."""
        gone = set(keys)
        for heap in (self._escalations, self._others):
            kept = [entry for entry in heap if entry[2].service.key not in gone]
            if len(kept) != len(heap):
                heapq.heapify(kept)
                heap[:] = kept
        self._recompute()

    def _recompute(self) -> None:
        heads = [heap[0][0] for heap in (self._escalations, self._others) if heap]
        self.next_due = min(heads, default=NEVER)

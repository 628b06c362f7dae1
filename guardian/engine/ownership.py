"""Which services this engine holds, and letting go of them.

When a consumer-group rebalance hands a service's partition to another
replica, this replica must stop judging it, including its pending timers
(rollback timeouts, no-data checks), or both replicas would escalate. A
service silent for longer than the idle time-to-live, with no live deploy, is
let go the same way so memory follows the services that are alive.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guardian.engine.engine import Engine

ServiceKey = tuple[str, str]


def held_services(engine: Engine) -> list[ServiceKey]:
    """Every (service, environment) with state in the engine."""
    return list(engine._services)


def live_services(engine: Engine) -> list[ServiceKey]:
    """Services with a deploy that is active or baking: their windows matter most."""
    return [key for key, st in engine._services.items() if st.deploy_live]


def forget_service(engine: Engine, service: str, environment: str) -> None:
    """Drop one service's state and timers; unknown services are ignored."""
    forget_services(engine, [(service, environment)])


def forget_services(engine: Engine, keys: Iterable[ServiceKey]) -> int:
    """Drop these services' state, deploys, plans and timers in one pass; return how many."""
    gone = []
    for key in keys:
        st = engine._services.pop(key, None)
        if st is not None:
            engine._series_count -= len(st.series)
            engine._plans.pop(key, None)
            gone.append(st)
    if not gone:
        return 0
    ids = {id(st) for st in gone}
    for deploy_id in [d for d, (st, _) in engine._deploys.items() if id(st) in ids]:
        del engine._deploys[deploy_id]
    timers = [t for t in engine._timers if id(t[3]) not in ids and id(t[4]) not in ids]
    if len(timers) != len(engine._timers):
        heapq.heapify(timers)
        engine._timers[:] = timers
    return len(gone)


def expire_idle(engine: Engine, cutoff_ms: int) -> int:
    """Forget services with no event since ``cutoff_ms`` and no live deploy; return how many.

    Service names come and go (renames, short-lived environments); without
    this their state would stay until the series cap, which then turns new
    names away. An expired service that sends again starts afresh; its last
    snapshot stays on the state topic.
    """
    idle = [
        key
        for key, st in engine._services.items()
        if st.watermark < cutoff_ms and not st.deploy_live
    ]
    return forget_services(engine, idle)

"""Which services this engine holds, and letting go of one that moved to another replica.

When a consumer-group rebalance hands a service's partition to another
replica, this replica must stop judging it, including its pending timers
(rollback timeouts, no-data checks), or both replicas would escalate.
"""

from __future__ import annotations

import heapq
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
    st = engine._services.pop((service, environment), None)
    if st is None:
        return
    engine._series_count -= len(st.series)
    if st.deploy is not None:
        engine._deploys.pop(st.deploy.deploy_id, None)
    timers = [t for t in engine._timers if t[3] is not st and t[4] is not st]
    if len(timers) != len(engine._timers):
        heapq.heapify(timers)
        engine._timers[:] = timers

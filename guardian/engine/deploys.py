"""Deploys by id: the one place a deploy is looked up by its id rather than by its service.

A service holds its current deploy; ``DeployBook`` also keeps earlier deploys
that have something to explain (an incident), so ``explain`` and a late
lifecycle step of an older deploy (its rollback finishing after a newer
deploy started) still find them. A deploy without an incident is let go as
soon as a newer one replaces it.

Limits: entries go only with their service (``forget``), never by age.
"""

from __future__ import annotations

from collections.abc import Iterable

from guardian.engine.state import DeployState, ServiceKey


class DeployBook:
    """Deploys worth finding by id."""

    __slots__ = ("_by_id",)

    def __init__(self) -> None:
        self._by_id: dict[str, DeployState] = {}

    def get(self, deploy_id: str) -> DeployState | None:
        """The deploy with this id, if it is still known."""
        return self._by_id.get(deploy_id)

    def open(self, deploy: DeployState, replaces: DeployState | None) -> None:
        """Record a new deploy; the one it replaces stays only if it has an incident."""
        if replaces is not None and not replaces.incident:
            self._by_id.pop(replaces.deploy_id, None)
        self._by_id[deploy.deploy_id] = deploy

    def forget(self, keys: Iterable[ServiceKey]) -> None:
        """Drop every deploy of these services."""
        gone = set(keys)
        for deploy_id in [i for i, d in self._by_id.items() if d.key in gone]:
            del self._by_id[deploy_id]

    def __len__(self) -> int:
        return len(self._by_id)

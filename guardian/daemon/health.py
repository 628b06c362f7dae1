"""Readiness: one small object every part of the daemon reports into.

``/readyz`` is green only when the broker is reachable, partitions are
assigned and rules are loaded; each check says why it is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Readiness:
    """Named readiness conditions; ready when all are true."""

    conditions: dict[str, bool] = field(
        default_factory=lambda: {
            "broker_connected": False,
            "partitions_assigned": False,
            "rules_loaded": False,
        }
    )

    def set(self, name: str, value: bool) -> None:
        """Record one condition."""
        self.conditions[name] = value

    @property
    def ready(self) -> bool:
        """True when every condition holds."""
        return all(self.conditions.values())

    def failing(self) -> list[str]:
        """The conditions that do not hold, for the /readyz body."""
        return sorted(name for name, ok in self.conditions.items() if not ok)

"""Who may request and approve manual rollbacks, and the timing of requests.

Pure values: the defaults follow the deployment procedures (roles ``SRE`` and
``DevOps Lead``, requests expire after 30 minutes). The daemon's settings do
not carry these fields yet, so ``ManualPolicy.from_settings`` reads them when
present and falls back to these defaults otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guardian.manual.tokens import Identity

DEFAULT_ROLES: frozenset[str] = frozenset({"SRE", "DevOps Lead"})
DEFAULT_REQUEST_TTL_S = 30 * 60
REQUEST_KEY_PREFIX = "request:"


@dataclass(frozen=True, slots=True)
class ManualPolicy:
    """Roles allowed to request and to approve, and how long a request waits for approval."""

    requester_roles: frozenset[str] = DEFAULT_ROLES
    approver_roles: frozenset[str] = DEFAULT_ROLES
    request_ttl_ms: int = DEFAULT_REQUEST_TTL_S * 1000

    def may_request(self, who: Identity) -> bool:
        """True when the identity holds a role that may ask for a rollback."""
        return bool(who.roles & self.requester_roles)

    def may_decide(self, who: Identity) -> bool:
        """True when the identity holds a role that may approve or deny."""
        return bool(who.roles & self.approver_roles)

    @classmethod
    def from_settings(cls, settings: Any) -> ManualPolicy:
        """Policy from ``manual_roles`` / ``manual_approver_roles`` / ``manual_request_ttl_s``."""
        roles = getattr(settings, "manual_roles", None)
        approvers = getattr(settings, "manual_approver_roles", None)
        ttl_s = getattr(settings, "manual_request_ttl_s", None)
        requester_roles = frozenset(roles) if roles else DEFAULT_ROLES
        return cls(
            requester_roles=requester_roles,
            approver_roles=frozenset(approvers) if approvers else requester_roles,
            request_ttl_ms=int((ttl_s or DEFAULT_REQUEST_TTL_S) * 1000),
        )

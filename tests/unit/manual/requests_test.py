"""The request state machine: pending → approved | denied | expired, and its refusals."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from guardian.manual.policy import DEFAULT_ROLES, ManualPolicy
from guardian.manual.requests import (
    ManualError,
    RollbackRequest,
    approve,
    deny,
    expire,
    newer,
    open_request,
    request_id,
)
from guardian.manual.tokens import Identity
from tests.support.manual import make_deploy

ALICE = Identity("alice", frozenset({"SRE"}))
BOB = Identity("bob", frozenset({"DevOps Lead"}))
CAROL = Identity("carol", frozenset({"developer"}))
POLICY = ManualPolicy()
T0 = 1_000_000


def pending(now_ms: int = T0) -> RollbackRequest:
    """A fresh pending request by alice."""
    return open_request(
        request_id="mr-1",
        deploy=make_deploy(),
        reason="errors",
        who=ALICE,
        policy=POLICY,
        now_ms=now_ms,
    )


def test_new_request_is_pending_for_thirty_minutes() -> None:
    """A request opens pending, by its requester, expiring after the default 30 minutes."""
    req = pending()
    assert (req.status, req.requested_by, req.revision) == ("pending", "alice", 1)
    assert req.expires_at_ms - req.requested_at_ms == 30 * 60 * 1000
    assert req.service == "checkout"


def test_role_less_identity_may_not_request() -> None:
    """An identity without SRE or DevOps Lead is refused with the roles it needs."""
    with pytest.raises(ManualError, match="DevOps Lead, SRE") as err:
        open_request(
            request_id="x", deploy=make_deploy(), reason="r", who=CAROL, policy=POLICY, now_ms=T0
        )
    assert err.value.kind == "forbidden"


def test_second_person_approves() -> None:
    """Another role-holder approves; the request records who, when and the command id."""
    req = approve(pending(), BOB, POLICY, T0 + 5, "rb-1")
    assert (req.status, req.decided_by, req.decided_at_ms, req.command_id) == (
        "approved",
        "bob",
        T0 + 5,
        "rb-1",
    )
    assert req.revision == 2


def test_self_approval_is_forbidden() -> None:
    """The requester cannot approve their own request (403, not 409)."""
    with pytest.raises(ManualError, match="second person") as err:
        approve(pending(), ALICE, POLICY, T0 + 5, "rb-1")
    assert err.value.kind == "forbidden"


@pytest.mark.parametrize(
    ("step", "kind"),
    [
        (lambda r: approve(r, BOB, POLICY, T0 + 1, "rb"), "conflict"),
        (lambda r: deny(r, BOB, POLICY, T0 + 1, "no"), "conflict"),
    ],
)
def test_decided_request_cannot_be_decided_again(
    step: Callable[[RollbackRequest], RollbackRequest], kind: str
) -> None:
    """Approving or denying a decided request is a conflict."""
    decided = deny(pending(), BOB, POLICY, T0 + 1, "not now")
    assert decided.decision_reason == "not now"
    with pytest.raises(ManualError, match="already denied by bob") as err:
        step(decided)
    assert err.value.kind == kind


def test_expired_request_cannot_be_decided() -> None:
    """Past its deadline a pending request is expired and refuses decisions (410)."""
    req = pending()
    late = req.expires_at_ms
    assert req.status_at(late - 1) == "pending"
    assert req.status_at(late) == "expired"
    with pytest.raises(ManualError) as err:
        approve(req, BOB, POLICY, late, "rb")
    assert err.value.kind == "expired"
    with pytest.raises(ManualError) as err:
        deny(req, BOB, POLICY, late, "no")
    assert err.value.kind == "expired"


def test_role_less_identity_may_not_decide() -> None:
    """Deciding needs an approver role."""
    with pytest.raises(ManualError) as err:
        deny(pending(), CAROL, POLICY, T0, "no")
    assert err.value.kind == "forbidden"


def test_requester_may_withdraw_by_denying() -> None:
    """The requester may deny (withdraw) their own request."""
    assert deny(pending(), ALICE, POLICY, T0, "mistake").status == "denied"


def test_expire_only_overdue_pending_requests() -> None:
    """``expire`` turns an overdue pending request into an expired one dated at its deadline."""
    req = pending()
    assert expire(req, req.expires_at_ms - 1) is None
    gone = expire(req, req.expires_at_ms + 10)
    assert gone is not None
    assert (gone.status, gone.decided_at_ms, gone.revision) == ("expired", req.expires_at_ms, 2)
    assert expire(gone, req.expires_at_ms + 20) is None


def test_round_trip_and_revision_order() -> None:
    """A request survives to_dict/from_dict; a higher revision replaces a lower one."""
    req = approve(pending(), BOB, POLICY, T0 + 1, "rb-1")
    again = RollbackRequest.from_dict(req.to_dict())
    assert again == req
    assert newer(None, req)
    assert newer(pending(), req)
    assert not newer(req, pending())
    with pytest.raises(ValueError, match="unknown status"):
        RollbackRequest.from_dict({**req.to_dict(), "status": "weird"})


def test_request_ids_differ_by_nonce() -> None:
    """Two requests at the same moment get different ids."""
    assert request_id("s", "e", "a", 1, "n1") != request_id("s", "e", "a", 1, "n2")
    assert request_id("s", "e", "a", 1, "n1").startswith("mr-")


def test_policy_from_settings_defaults_and_overrides() -> None:
    """Absent settings fields give the defaults; present ones override."""

    class Plain:
        pass

    class Custom:
        manual_roles = ("Ops",)
        manual_approver_roles = None
        manual_request_ttl_s = 60

    assert ManualPolicy.from_settings(Plain()) == ManualPolicy()
    custom = ManualPolicy.from_settings(Custom())
    assert custom.requester_roles == custom.approver_roles == frozenset({"Ops"})
    assert custom.request_ttl_ms == 60_000
    assert frozenset({"SRE", "DevOps Lead"}) == DEFAULT_ROLES

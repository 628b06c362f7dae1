"""ManualService over an in-memory request log: the whole flow without a broker."""

from __future__ import annotations

import asyncio

import pytest

from guardian.manual.policy import ManualPolicy
from guardian.manual.requests import ManualError
from guardian.manual.service import ManualService
from guardian.manual.tokens import Identity
from guardian.manual.view import MemoryRequestLog
from tests.support.manual import Clock, Lookup, RecordingWriter, make_deploy

ALICE = Identity("alice", frozenset({"SRE"}))
BOB = Identity("bob", frozenset({"DevOps Lead"}))
DAN = Identity("dan", frozenset({"SRE"}))
CAROL = Identity("carol", frozenset({"developer"}))


class World:
    """A service with its fakes."""

    def __init__(self) -> None:
        self.log = MemoryRequestLog()
        self.writer = RecordingWriter()
        self.clock = Clock()
        self.commands = 0
        self.service = ManualService(
            self.log,
            self.writer,
            Lookup(make_deploy("d-1"), make_deploy("d-9", service="cart")),
            policy=ManualPolicy(),
            clock_ms=self.clock,
            signing_key=b"key",
            on_command=self._count,
        )

    def _count(self) -> None:
        self.commands += 1


async def request(world: World, who: Identity = ALICE, **kw: str | None) -> str:
    """Open a request on checkout/production and return its id."""
    args: dict[str, str | None] = {
        "service": "checkout",
        "environment": "production",
        "deploy_id": None,
        "reason": "errors",
    }
    args.update(kw)
    req = await world.service.request(who, **args)  # type: ignore[arg-type]
    return req.id


async def test_request_then_approval_by_another_person_emits_one_command() -> None:
    """Request by alice, approval by bob: a manual command is written and counted."""
    world = World()
    rid = await request(world)
    assert world.service.get(rid).status == "pending"
    done = await world.service.approve(BOB, rid)
    assert done.status == "approved"
    assert done.command_id is not None
    roles = [o.role for o in world.writer.outputs]
    assert roles == ["audit", "notification", "command", "audit", "notification"]
    assert world.commands == 1
    assert [r.revision for r in world.log.puts] == [1, 2]


async def test_refusals_carry_their_kind() -> None:
    """Self-approval, role-less callers, unknown ids and re-decisions are refused by kind."""
    world = World()
    rid = await request(world)
    cases = [
        (world.service.approve(ALICE, rid), "forbidden"),
        (world.service.approve(CAROL, rid), "forbidden"),
        (world.service.approve(BOB, "mr-nope"), "not_found"),
        (
            world.service.request(
                CAROL, service="checkout", environment="production", deploy_id=None, reason="r"
            ),
            "forbidden",
        ),
    ]
    for call, kind in cases:
        with pytest.raises(ManualError) as err:
            await call
        assert err.value.kind == kind
    await world.service.deny(BOB, rid, "fine")
    with pytest.raises(ManualError) as err:
        await world.service.approve(DAN, rid)
    assert err.value.kind == "conflict"


async def test_nothing_to_roll_back_is_a_conflict_saying_why() -> None:
    """No known deploy, or a deploy id that is not the current one, is a 409 with the reason."""
    world = World()
    with pytest.raises(ManualError, match="nothing to roll back") as err:
        await request(world, service="unknown")
    assert err.value.kind == "conflict"
    with pytest.raises(ManualError, match="that is d-1"):
        await request(world, deploy_id="d-0")
    assert await request(world, deploy_id="d-1")


async def test_one_pending_request_per_deploy() -> None:
    """A second request for a deploy with a pending one is refused until it is decided."""
    world = World()
    rid = await request(world)
    with pytest.raises(ManualError, match=f"{rid} by alice is already pending"):
        await request(world, who=DAN)
    await world.service.deny(DAN, rid, "no")
    await request(world, who=DAN)


async def test_concurrent_approvals_emit_one_command() -> None:
    """Two approvals racing in one process: one wins, the other is a conflict."""
    world = World()
    rid = await request(world)
    results = await asyncio.gather(
        world.service.approve(BOB, rid), world.service.approve(DAN, rid), return_exceptions=True
    )
    assert sum(isinstance(r, ManualError) and r.kind == "conflict" for r in results) == 1
    assert world.commands == 1


async def test_broker_failure_leaves_the_request_unchanged() -> None:
    """When outputs are not acknowledged the step is 'unavailable' and can be retried."""
    world = World()
    rid = await request(world)
    world.writer.fail = True
    with pytest.raises(ManualError) as err:
        await world.service.approve(BOB, rid)
    assert err.value.kind == "unavailable"
    assert err.value.retriable
    world.writer.fail = False
    assert (await world.service.approve(BOB, rid)).status == "approved"


async def test_expiry_sweep_writes_overdue_requests_once() -> None:
    """Overdue pending requests are expired once; later sweeps do nothing."""
    world = World()
    rid = await request(world)
    other = await request(world, service="cart")
    await world.service.approve(BOB, other)
    assert await world.service.expire_due() == []
    world.clock.now_ms += 31 * 60 * 1000
    expired = await world.service.expire_due()
    assert [r.id for r in expired] == [rid]
    assert world.service.get(rid).status == "expired"
    assert await world.service.expire_due() == []
    with pytest.raises(ManualError) as err:
        await world.service.approve(BOB, rid)
    assert err.value.kind == "expired"


async def test_find_filters_by_status_and_service_newest_first() -> None:
    """Listing filters by effective status and service and returns the newest first."""
    world = World()
    first = await request(world)
    world.clock.now_ms += 1
    second = await request(world, service="cart")
    find = world.service.find
    assert [r.id for r in find()] == [second, first]
    assert [r.id for r in find(service="cart")] == [second]
    assert [r.id for r in find(status="approved")] == []
    assert [r.id for r in find(limit=1)] == [second]
    world.clock.now_ms += 31 * 60 * 1000
    assert [r.id for r in find(status="expired")] == [second, first]

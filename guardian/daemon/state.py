"""State that survives restarts and partition moves: engine snapshots on a compacted topic.

What is written, keyed by ``service\\x00environment``:

- in the same batch as the event or decision that changed it (so the snapshot
  is acknowledged before the input offset is committed): the service's state
  after a deploy or check event, or after any decision;
- every ``SNAPSHOT_INTERVAL_S``, the state of services with a live deploy
  whose windows moved, so a restart resumes with recent windows.

What is read: when this replica is assigned input partitions (start-up or
rebalance), the latest snapshot of every service those partitions own.
Input topics are keyed by service and co-partitioned, so a service's
partition is the same on every input topic. Services whose partitions are
revoked are dropped from this replica's engine, so two replicas never judge
(or time out) the same service.

The engine is reached only through its public API, typed here as the
``SnapshotEngine`` protocol: snapshots (``guardian.engine.encode_snapshot`` /
``decode_snapshot``, versioned; older versions are read, unknown ones
refused with ``SnapshotError``) and which services it holds.

Limits: a snapshot larger than ``MAX_SNAPSHOT_BYTES`` is written without its
sliding windows (deploy, decisions and baselines are kept), so a restart of
such a service refills its windows from new events.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

import structlog
from aiokafka.partitioner import murmur2

from guardian.actions.outputs import OutputRecord
from guardian.engine import ServiceSnapshot, SnapshotError, decode_snapshot, encode_snapshot

log = structlog.get_logger(__name__)

SNAPSHOT_INTERVAL_S = 30.0
MAX_SNAPSHOT_BYTES = 900_000
ServiceKey = tuple[str, str]


def partition_of(service: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a service key (murmur2, as Java does)."""
    hashed: int = murmur2(service.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def owned_partitions(assigned: Iterable[tuple[str, int]], topics: Iterable[str]) -> set[int]:
    """Partition numbers this replica holds on every input topic: the services it owns.

    The range assignor and equal partition counts make the per-topic sets
    equal; if they ever differ, a service half held is not owned (and it is
    logged, since its deploys and metrics would be judged apart).
    """
    by_topic: dict[str, set[int]] = {topic: set() for topic in topics}
    for topic, partition in assigned:
        if topic in by_topic:
            by_topic[topic].add(partition)
    held = list(by_topic.values())
    common = set.intersection(*held) if held else set()
    if any(h != common for h in held):
        log.error(
            "assignment_not_copartitioned",
            by_topic={t: sorted(ps) for t, ps in by_topic.items()},
        )
    return common


def state_key(service: str, environment: str) -> bytes:
    """Key of a service's snapshot on the state topic."""
    return f"{service}\x00{environment}".encode()


def parse_state_key(key: bytes) -> ServiceKey | None:
    """The (service, environment) of a state key, or None for a foreign key."""
    service, sep, environment = key.decode(errors="replace").partition("\x00")
    return (service, environment) if sep else None


class SnapshotEngine(Protocol):
    """What the state keeper needs of the engine (``guardian.engine.Engine``)."""

    def snapshot(self, service: str, environment: str) -> ServiceSnapshot | None:
        """One service's state, or None if the engine holds none."""
        ...

    def restore(self, snapshot: ServiceSnapshot) -> None:
        """Replace one service's state with a snapshot's."""
        ...

    def held_services(self) -> list[ServiceKey]:
        """Every (service, environment) the engine holds."""
        ...

    def live_services(self) -> list[ServiceKey]:
        """Services with a live (active or baking) deploy."""
        ...

    def forget_services(self, keys: list[ServiceKey]) -> int:
        """Drop these services and everything that hangs off them; return how many."""
        ...


class StateKeeper:
    """Decides which snapshots to write and restores the ones this replica owns."""

    def __init__(self, engine: SnapshotEngine) -> None:
        self._engine = engine
        self._last_periodic = time.monotonic()
        self._owned: set[int] = set()
        self._partitions = 0

    def owns(self, service: str) -> bool:
        """Whether this replica judges ``service`` now (its partition is assigned here)."""
        return bool(self._owned) and partition_of(service, self._partitions) in self._owned

    async def rebalance(
        self,
        owned: set[int],
        partitions: int,
        load_latest: Callable[[Callable[[bytes], bool]], Awaitable[dict[bytes, bytes]]],
    ) -> None:
        """Drop services that left, restore the ones that arrived (from the changelog).

        ``load_latest(keep)`` reads the changelog's latest value per key, holding
        only the keys ``keep`` accepts: the services of the gained partitions.
        """
        dropped = self.drop_unowned(owned, partitions)
        gained = owned - self._owned
        # Gained partitions are owned only once restored (``owns`` says no meanwhile).
        self._owned &= owned
        self._partitions = partitions
        restored = 0
        if gained:

            def wanted(key: bytes) -> bool:
                parsed = parse_state_key(key)
                return parsed is not None and partition_of(parsed[0], partitions) in gained

            restored = self.restore(await load_latest(wanted), gained, partitions)
        self._owned = set(owned)
        log.info(
            "state_rebuilt",
            owned_partitions=sorted(owned),
            restored_services=restored,
            dropped_services=dropped,
        )

    def outputs_for(self, touched: Iterable[ServiceKey]) -> list[OutputRecord]:
        """Snapshot records for services whose deploy state changed in this batch."""
        records = []
        for service, environment in set(touched):
            record = self._snapshot_record(service, environment)
            if record is not None:
                records.append(record)
        return records

    def periodic_outputs(self, force: bool = False) -> list[OutputRecord]:
        """Every interval: snapshots of services with a live deploy (recent windows)."""
        now = time.monotonic()
        if not force and now - self._last_periodic < SNAPSHOT_INTERVAL_S:
            return []
        self._last_periodic = now
        return self.outputs_for(self._engine.live_services())

    def handover_outputs(self, owned: set[int], partitions: int) -> list[OutputRecord]:
        """Snapshots of the live services about to move to another replica (or to none).

        Input offsets are committed every batch but windows and tests are
        written only on changes and every ``SNAPSHOT_INTERVAL_S``: without this,
        the next owner would restore older state and never see the evidence
        in between again. Written before the partitions are given up.
        """
        return self.outputs_for(
            key
            for key in self._engine.live_services()
            if not owned or partition_of(key[0], partitions) not in owned
        )

    def _snapshot_record(self, service: str, environment: str) -> OutputRecord | None:
        snapshot = self._engine.snapshot(service, environment)
        if snapshot is None:
            return None
        value = encode_snapshot(snapshot)
        if len(value) > MAX_SNAPSHOT_BYTES:
            value = encode_snapshot(snapshot.without_windows())
            log.warning("snapshot_windows_dropped", service=service, environment=environment)
        return OutputRecord("state", state_key(service, environment), value)

    def restore(self, latest: dict[bytes, bytes], owned: set[int], partitions: int) -> int:
        """Restore every snapshot whose service lives on an owned partition; return how many."""
        restored = 0
        for key, value in latest.items():
            parsed = parse_state_key(key)
            if parsed is None or partition_of(parsed[0], partitions) not in owned:
                continue
            try:
                self._engine.restore(decode_snapshot(value))
            except SnapshotError as exc:
                log.warning("snapshot_unusable", service=parsed[0], error=str(exc))
                continue
            restored += 1
        return restored

    def drop_unowned(self, owned: set[int], partitions: int) -> int:
        """Forget services that moved to another replica; return how many."""
        moved = [
            key
            for key in self._engine.held_services()
            if partition_of(key[0], partitions) not in owned
        ]
        return self._engine.forget_services(moved)

"""The applied-commands ledger: a compacted topic, command id → what the executor did.

Each command the executor acts on gets two records under its id: ``applying``
before the first patch is sent (flushed, so it is on the broker first) and
``done`` with the outcome once the rollout finished or failed. At start, and
after every partition assignment (another replica may have applied commands
of the partitions it hands over), the topic is read back
(``guardian.kafka.state_store.read_latest``): a ``done`` command is never
applied again, whatever redelivers it.

A crash between the patch and the ``done`` record leaves ``applying``: the
next start runs the command again as *resumed*. Its precondition then finds
the target already on ``to_version`` (the earlier patch landed), patches
nothing more and reports ``rolled_back``; if the patch never landed, the
target still runs ``from_version`` and the command is applied normally.

Refused commands (bad signature) are never recorded: a forged command that
borrows a real command's id must not block the real one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson

State = Literal["applying", "done"]


class Writer(Protocol):
    """Where ledger records go (the Kafka sink)."""

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Queue one record."""

    async def flush(self) -> None:
        """Wait until every queued record is acknowledged."""


Reader = Callable[[], Awaitable[dict[bytes, bytes]]]


@dataclass(frozen=True, slots=True)
class Entry:
    """The latest ledger record of one command."""

    state: State
    status: str | None = None


class Ledger:
    """The executor's memory of what it applied, kept on (and restored from) a compacted topic."""

    def __init__(self, topic: str, writer: Writer, reader: Reader) -> None:
        self._topic = topic
        self._writer = writer
        self._reader = reader
        self._entries: dict[str, Entry] = {}

    async def restore(self) -> int:
        """Read the topic back; the number of commands it knows."""
        entries: dict[str, Entry] = {}
        for key, value in (await self._reader()).items():
            try:
                record = orjson.loads(value)
                entries[key.decode()] = Entry(record["state"], record.get("status"))
            except (orjson.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
                continue  # not ours: never fatal, and never a reason to re-apply
        # What this process recorded since the read started is newer than the topic's copy.
        entries.update(self._entries)
        self._entries = entries
        return len(entries)

    def state_of(self, command_id: str) -> Entry | None:
        """What the ledger holds for a command, or None if it never saw it."""
        return self._entries.get(command_id)

    async def applying(self, command_id: str, at: str, details: dict[str, Any]) -> None:
        """Record, durably, that patches for this command are about to be sent."""
        await self._write(command_id, {"state": "applying", "at": at, **details})
        await self._writer.flush()

    async def done(self, command_id: str, status: str, at: str, details: dict[str, Any]) -> None:
        """Queue the outcome (flushed with the batch's other outputs)."""
        await self._write(command_id, {"state": "done", "status": status, "at": at, **details})

    async def _write(self, command_id: str, record: dict[str, Any]) -> None:
        record = {"kind": "executor_applied", "command_id": command_id, **record}
        await self._writer.send(self._topic, orjson.dumps(record), key=command_id.encode())
        self._entries[command_id] = Entry(record["state"], record.get("status"))

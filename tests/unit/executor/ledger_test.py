"""The applied-commands ledger over an in-memory topic (the sink's Protocol)."""

from __future__ import annotations

import orjson

from guardian.executor.ledger import Entry, Ledger


class MemoryTopic:
    """A compacted topic in memory: the latest value per key once flushed."""

    def __init__(self) -> None:
        self.latest: dict[bytes, bytes] = {}
        self.queued: list[tuple[bytes, bytes]] = []
        self.flushes = 0

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        assert key is not None
        self.queued.append((key, value))

    async def flush(self) -> None:
        self.flushes += 1
        self.latest.update(self.queued)
        self.queued.clear()

    async def read(self) -> dict[bytes, bytes]:
        return dict(self.latest)


async def test_applying_is_flushed_before_patching_and_done_waits_for_the_batch() -> None:
    """The intent is durable at once; the outcome rides with the batch's flush."""
    topic = MemoryTopic()
    ledger = Ledger("applied", topic, topic.read)
    await ledger.applying("rb-1", "2026-12-02T00:00:00.000Z", {"deploy_id": "d-1"})
    assert topic.flushes == 1
    assert orjson.loads(topic.latest[b"rb-1"])["state"] == "applying"
    await ledger.done("rb-1", "rolled_back", "2026-12-02T00:00:01.000Z", {})
    assert ledger.state_of("rb-1") == Entry("done", "rolled_back")
    assert topic.queued


async def test_a_restart_knows_what_was_applied_and_skips_foreign_records() -> None:
    """A new ledger reads the topic back; records that are not its own are ignored."""
    topic = MemoryTopic()
    first = Ledger("applied", topic, topic.read)
    await first.applying("rb-1", "t", {})
    await first.done("rb-1", "rolled_back", "t", {})
    await first.applying("rb-2", "t", {})
    topic.latest[b"junk"] = b"not json"
    topic.latest[b"other"] = b'{"no": "state"}'
    second = Ledger("applied", topic, topic.read)
    assert await second.restore() == 2
    assert second.state_of("rb-1") == Entry("done", "rolled_back")
    assert second.state_of("rb-2") == Entry("applying", None)
    assert second.state_of("rb-3") is None


async def test_a_restore_keeps_what_this_process_wrote_since() -> None:
    """A reload after a rebalance never forgets an outcome not yet flushed."""
    topic = MemoryTopic()
    ledger = Ledger("applied", topic, topic.read)
    await ledger.applying("rb-1", "t", {})
    await ledger.done("rb-1", "failed", "t", {})  # queued, not flushed
    await ledger.restore()
    assert ledger.state_of("rb-1") == Entry("done", "failed")

"""The OTLP bridge when the group rebalances under a batch, against a stand-in consumer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError
from structlog.testing import capture_logs

from guardian.config.settings import Settings
from guardian.inputs.adapters.bridge import OtlpBridge
from guardian.inputs.cumulative import SeriesState
from guardian.inputs.mapping import InputsFile, compile_mapping
from guardian.inputs.otlp import OtlpConverter
from guardian.inputs.records import OutRecord
from guardian.metrics import GuardianMetrics
from tests.unit.inputs.builders import CANARY, T0_MS, export, histogram

TP = TopicPartition("otlp", 0)


class Message:
    """The fields of a ConsumerRecord the bridge reads."""

    def __init__(self, value: bytes) -> None:
        self.topic, self.partition, self.offset = "otlp", 0, 7
        self.key, self.value, self.timestamp, self.headers = b"r", value, T0_MS, ()


class RefusingConsumer:
    """Hands out one record, then refuses its commit as a rebalanced group does."""

    def __init__(self, value: bytes, stop: asyncio.Event) -> None:
        self._pending = [Message(value)]
        self._stop = stop
        self.commits = 0

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        if self._pending:
            return {TP: [self._pending.pop()]}
        self._stop.set()
        return {}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits += 1
        raise CommitFailedError("the group rebalanced")


class Sink:
    """Takes every write."""

    ready = True

    def __init__(self) -> None:
        self.written: list[OutRecord] = []

    async def write(self, records: Sequence[OutRecord]) -> None:
        self.written.extend(records)


async def test_a_commit_refused_by_a_rebalance_is_logged_and_the_bridge_goes_on() -> None:
    """The events are written, the refused commit is one warning, and the bridge keeps running."""
    record = export(
        CANARY,
        [
            histogram(
                [({"http.response.status_code": 500}, 4, [4] + [0] * 14)], at_ms=T0_MS, delta=True
            )
        ],
    ).SerializeToString()
    stop = asyncio.Event()
    consumer = RefusingConsumer(record, stop)
    sink = Sink()
    converter = OtlpConverter(compile_mapping(InputsFile().otlp), SeriesState())
    bridge = OtlpBridge(
        Settings(otlp_topics=["otlp"]), "unused:9092", converter, sink, GuardianMetrics()
    )
    bridge._consumer = consumer  # the stand-in at the client edge, as source_retry_test does
    with capture_logs() as logs:
        await asyncio.wait_for(bridge.run(stop), 10)
    assert consumer.commits == 1
    assert sink.written
    refused = [entry for entry in logs if entry["event"] == "bridge_commit_refused_by_rebalance"]
    assert [entry["partitions"] for entry in refused] == [["otlp-0"]]

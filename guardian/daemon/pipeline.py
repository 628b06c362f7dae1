"""Where a consumed record becomes a decision and the decision becomes records.

For one batch: decode every record (v1, or a CDEvent in CloudEvents binary
or structured mode or bare, ``guardian.wire.cdevents``; bad ones become dead
letters, CloudEvents of other types are skipped), order the events by event
time (deploy and check events ahead of metrics of the same instant), feed
them to the engine one by one as ``guardian replay`` does
(``DecisionEngine.feed``: due timers fire between events, never at batch
ends), turn decisions into commands, audit records, notification entries and
incident CDEvents, write them all, wait for the broker's acknowledgements, and only then tell
the caller which offsets may be committed. A crash anywhere before that
re-delivers the whole batch; command ids are deterministic, so the
re-delivery re-sends the same commands.

Decisions do not depend on how records are cut into batches or chunks: a
large batch is decoded and ordered whole, then fed in slices; the engine
catches a deploy up on samples that came before its event. An idle tick
(no records for a while) fires rollback escalations only: every other timer
waits for event time, so the events still to come are judged as a replay
would judge them.

Policy per stage: bad input → dead letter and go on; a sink error propagates
(the daemon retries or stops); nothing in here sleeps or logs per event.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Literal, Protocol

import orjson
import structlog

from guardian.actions.incidents import DeployLookup, IncidentEvents, confirmed_deploy
from guardian.actions.outputs import OutputRecord, Role, outputs_for
from guardian.daemon.state import StateKeeper
from guardian.engine.decision import Decision
from guardian.errors import DecodeError
from guardian.kafka.source import Position, RawRecord
from guardian.metrics import GuardianMetrics
from guardian.notify.notice import confirmation_entry
from guardian.wire.cdevents import UnusedEventError, decode_record
from guardian.wire.events import DeployEvent, InputEvent, MetricEvent
from guardian.wire.records import DeadLetter, DeadLetterSource

log = structlog.get_logger(__name__)

_event_time = attrgetter("timestamp")


class DecisionEngine(Protocol):
    """What the pipeline needs of the rule engine (``guardian.engine.Engine``)."""

    def feed(self, event: InputEvent) -> list[Decision]:
        """Apply one event in stream order, with the timers that come due."""
        ...

    def advance_idle(self, now_ms: int) -> list[Decision]:
        """Wall-clock time passed with no input: fire due rollback escalations."""
        ...


class RecordSink(Protocol):
    """Where output records go: queue with ``send``, wait for acknowledgements with ``flush``."""

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None: ...

    async def flush(self) -> None: ...


@dataclass
class BatchResult:
    """One judged batch: the records to write, and the offsets to commit once they are written."""

    next_offsets: dict[Position, int] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    outputs: list[OutputRecord] = field(default_factory=list)
    consumed: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    commands: int = 0
    started: float = 0.0


@dataclass
class _Judging:
    """A batch between decoding and its outputs: what judging it accumulates."""

    result: BatchResult
    now_ms: int
    # Deploy and check events apart from metrics: put first, a stable sort by event
    # time keeps them ahead of the metrics of the same instant.
    lifecycle: list[InputEvent] = field(default_factory=list)
    metrics: list[InputEvent] = field(default_factory=list)
    touched: set[tuple[str, str]] = field(default_factory=set)
    forwarded: int = 0

    def ordered(self) -> list[InputEvent]:
        """Every decoded event in event-time order (lifecycle events first on ties)."""
        events = [*self.lifecycle, *self.metrics]
        events.sort(key=_event_time)
        return events


class Pipeline:
    """Decode → engine → actions → sink, one batch at a time."""

    def __init__(
        self,
        engine: DecisionEngine,
        sink: RecordSink,
        topics: dict[Role, str],
        metrics: GuardianMetrics,
        *,
        signing_key: bytes | None = None,
        max_future_skew_ms: int = 300_000,
        dlq_max_original_bytes: int = 512 * 1024,
        wall_clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        state: StateKeeper | None = None,
        deploy_lookup: DeployLookup | None = None,
        incidents: IncidentEvents | None = None,
    ) -> None:
        self.engine = engine
        # The engine's view of a deploy an executor confirmed (``Engine.deploy_of``).
        self._deploy_lookup = deploy_lookup
        self._incidents = incidents
        self._sink = sink
        self._topics = topics
        self._metrics = metrics
        self._signing_key = signing_key
        self._max_future_skew_ms = max_future_skew_ms
        self._dlq_max_original_bytes = dlq_max_original_bytes
        self._wall_clock_ms = wall_clock_ms
        self._state = state
        self.watermark_ms = 0

    async def handle_batch(
        self, records: Sequence[RawRecord], transport: str = "kafka"
    ) -> BatchResult:
        """Judge a batch and write its outputs; return the offsets that are safe to commit."""
        result = self.judge(records, transport)
        await self.deliver(result)
        return result

    async def judge_in_chunks(
        self, records: Sequence[RawRecord], transport: str = "kafka", chunk: int = 500
    ) -> BatchResult:
        """Judge a large batch a slice at a time, letting other tasks run in between.

        Judging is CPU work on the event loop; one 5,000-record batch would hold
        the HTTP API and heartbeats for its whole duration. The whole batch is
        decoded and ordered before any of it is judged, so the slices decide
        exactly what the batch judged at once would.
        """
        batch = self._start()
        for start in range(0, len(records), chunk):
            if start:
                await asyncio.sleep(0)
            self._decode(records[start : start + chunk], transport, batch)
        events = batch.ordered()
        for start in range(0, len(events), chunk):
            await asyncio.sleep(0)
            self._feed(events[start : start + chunk], batch)
        return self._finish(batch)

    def judge(self, records: Sequence[RawRecord], transport: str = "kafka") -> BatchResult:
        """Decode and decide a batch; nothing is written yet.

        Judging advances the engine's state, so a batch is judged once; if
        writing its outputs fails, the daemon retries ``deliver`` with the same
        outputs rather than judging the records again.
        """
        batch = self._start()
        self._decode(records, transport, batch)
        self._feed(batch.ordered(), batch)
        return self._finish(batch)

    def _start(self) -> _Judging:
        return _Judging(BatchResult(started=time.perf_counter()), self._wall_clock_ms())

    def _feed(self, events: Sequence[InputEvent], batch: _Judging) -> None:
        """Feed events (in event-time order) to the engine, collecting their decisions."""
        decisions = batch.result.decisions
        feed = self.engine.feed
        watermark = self.watermark_ms
        for event in events:
            found = feed(event)
            if found:
                decisions.extend(found)
            watermark = max(watermark, event.timestamp)
            if type(event) is not MetricEvent:  # deploy and check events change deploy state
                batch.touched.add((event.service, event.environment))
                if isinstance(event, DeployEvent) and event.type in ("rolled_back", "failed"):
                    batch.result.outputs.extend(self._confirmation(event, batch.now_ms))
        self.watermark_ms = watermark

    def _finish(self, batch: _Judging) -> BatchResult:
        """State snapshots, then each decision's records; count the batch."""
        result = batch.result
        outputs = result.outputs
        touched = batch.touched
        touched.update((d.service, d.environment) for d in result.decisions)
        if self._state is not None:
            outputs.extend(self._state.outputs_for(touched))
            outputs.extend(self._state.periodic_outputs())
        for decision in result.decisions:
            self._act(decision, batch.now_ms, result)
        result.dead_letters = sum(1 for o in outputs if o.role == "dlq")
        self._count(result, batch.forwarded)
        return result

    def _count(self, result: BatchResult, forwarded: int) -> None:
        for topic, count in result.consumed.items():
            self._metrics.events_consumed.labels(topic).inc(count)
        if forwarded:
            self._metrics.events_forwarded.inc(forwarded)
        if result.dead_letters:
            self._metrics.dead_letters.inc(result.dead_letters)
            self._metrics.events_rejected.labels("invalid").inc(result.dead_letters)

    def _decode(self, records: Sequence[RawRecord], transport: str, batch: _Judging) -> None:
        """Decode records into ``batch``: events to judge; dead letters and forwards as outputs."""
        result = batch.result
        now_ms = batch.now_ms
        horizon_ms = now_ms + self._max_future_skew_ms
        outputs = result.outputs
        consumed = result.consumed
        # MQTT topics are per device and unbounded; count them under one label.
        fixed_label = None if transport == "kafka" else transport
        # MQTT has no partitions: an event for a service another replica owns goes on
        # to its Kafka input topic, where that replica reads it.
        keeper = self._state if transport != "kafka" else None
        metrics, lifecycle = batch.metrics, batch.lifecycle
        for record in records:
            consumed[fixed_label or record.topic] += 1
            result.next_offsets[(record.topic, record.partition)] = record.offset + 1
            try:
                # v1, or a CDEvent (CloudEvents binary or structured mode, or bare)
                event = decode_record(record.value, record.headers)
            except UnusedEventError:
                continue  # a CloudEvent of a type the guardian does not judge
            except DecodeError as exc:
                outputs.append(self._dead_letter(record, exc.reason, now_ms, transport))
                continue
            if event.timestamp > horizon_ms:
                # A clock far ahead would drag its service's event time forward and
                # make every honest event look late; refuse it instead.
                reason = (
                    f"timestamp {event.timestamp} ms is more than "
                    f"{self._max_future_skew_ms // 1000}s ahead of the guardian's clock"
                )
                outputs.append(self._dead_letter(record, reason, now_ms, transport))
                continue
            if keeper is not None and not keeper.owns(event.service):
                role: Role = "metric" if type(event) is MetricEvent else "deploy"
                outputs.append(OutputRecord(role, event.service.encode(), record.value))
                batch.forwarded += 1
                continue
            (metrics if type(event) is MetricEvent else lifecycle).append(event)

    def _act(self, decision: Decision, now_ms: int, result: BatchResult) -> None:
        """Turn one decision into its output records, count it and log it."""
        produced, command = outputs_for(decision, now_ms=now_ms, signing_key=self._signing_key)
        result.outputs.extend(produced)
        if command is not None:
            result.commands += 1
            if self._incidents is not None:
                result.outputs.append(self._incidents.detected(decision, command))
        self._metrics.decisions.labels(decision.rule, decision.action).inc()
        log.info(
            "decision",
            rule=decision.rule,
            action=decision.action,
            severity=decision.severity,
            state=decision.state,
            dry_run=decision.dry_run,
            service=decision.service,
            environment=decision.environment,
            deploy_id=decision.deploy_id,
            regions=list(decision.regions),
            reason=decision.reason,
            evidence=decision.evidence,
            command_id=command.command_id if command else None,
        )

    def handover(self) -> BatchResult:
        """Before a drain's last commit: the state of every live service, for the next owner."""
        result = BatchResult(started=time.perf_counter())
        if self._state is not None:
            result.outputs.extend(self._state.periodic_outputs(force=True))
        return result

    def idle(self, idle_ms: int) -> BatchResult:
        """No records for ``idle_ms`` of wall time: rollback escalations still fire.

        With no events, event time would stand still and a rollback that no
        executor confirms would never escalate. While idle, escalations are due
        by the wall clock counted from the newest event seen; other timers (bake
        ends, no-data checks, idle expiry) wait for event time, so they cannot
        fire ahead of events still on their way and judge those differently.
        """
        result = BatchResult(started=time.perf_counter())
        if not self.watermark_ms:
            return result
        now_ms = self._wall_clock_ms()
        for decision in self.engine.advance_idle(self.watermark_ms + idle_ms):
            result.decisions.append(decision)
            self._act(decision, now_ms, result)
        if self._state is not None:
            touched = {(d.service, d.environment) for d in result.decisions}
            result.outputs.extend(self._state.outputs_for(touched))
            result.outputs.extend(self._state.periodic_outputs())
        return result

    async def deliver(self, result: BatchResult) -> None:
        """Write a judged batch's outputs and wait for every acknowledgement.

        Safe to call again after a failure: outputs carry deterministic ids.
        """
        for output in result.outputs:
            headers = list(output.headers) if output.headers else None
            await self._sink.send(
                self._topics[output.role], output.value, key=output.key, headers=headers
            )
        await self._sink.flush()
        if result.commands:
            self._metrics.rollback_commands.labels("automatic").inc(result.commands)
            self._metrics.decision_latency.observe(time.perf_counter() - result.started)
        self._metrics.batch_seconds.observe(time.perf_counter() - result.started)

    def _confirmation(self, event: DeployEvent, now_ms: int) -> list[OutputRecord]:
        """An executor confirmed (or gave up on) a rollback: close the deploy's incidents."""
        deploy = confirmed_deploy(event, self._deploy_lookup)
        if deploy is None:
            return []  # a ``@live`` step for a service with no deploy to close
        status: Literal["rolled_back", "failed"] = (
            "rolled_back" if event.type == "rolled_back" else "failed"
        )
        entry = confirmation_entry(deploy, status=status, at_ms=event.timestamp, now_ms=now_ms)
        out = [OutputRecord("notification", event.service.encode(), orjson.dumps(entry))]
        if self._incidents is not None and deploy.rollback_rule is not None:
            out.append(self._incidents.resolved(deploy, status, event.timestamp))
        return out

    def _dead_letter(
        self, record: RawRecord, reason: str, now_ms: int, transport: str
    ) -> OutputRecord:
        letter = DeadLetter.wrap(
            source=DeadLetterSource(
                transport="mqtt" if transport == "mqtt" else "kafka",
                topic=record.topic,
                partition=record.partition if transport == "kafka" else None,
                offset=record.offset if transport == "kafka" else None,
            ),
            reason=reason,
            original=record.value,
            received_at_ms=now_ms,
            max_original_bytes=self._dlq_max_original_bytes,
        )
        log.warning(
            "dead_lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
        )
        return OutputRecord("dlq", record.key or b"", orjson.dumps(letter.model_dump(mode="json")))

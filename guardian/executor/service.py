"""``guardian execute``'s lifecycle and Kafka loop: commands in, patches out, outcomes back.

One ``AsyncExitStack`` opens, in order: the Kubernetes clients, the topics
(created when missing, the ledger's compacted), the sink, the ledger (read
back before anything is consumed), the HTTP endpoints and the consumer (its
own group, ``executor_group_id``). A batch's commands run one task per
service: one rollout may take minutes and another service's command must not
wait for it, while one service's commands (a pause, then a rollback) run in
order and never race on one workload. The batch's outputs are flushed, then
its offsets committed (at-least-once; the ledger turns redelivery into a
no-op).

Per command, in order: decode (invalid → refused), verify the signature
when ``signing_key`` is set (unsigned or forged → refused: audited, counted,
never applied nor recorded), refuse an expired one, skip one the ledger holds
as ``done``, then for each of its targets ``apply_to_target``, and report.

A stop request (SIGTERM) drains: no new batch is taken; commands still
waiting for a rollout stop waiting, stay ``applying`` in the ledger and are
not committed, so the next start resumes them; the rest is flushed and
committed. ``dry_run`` plans and logs only: no ledger, no reports, no
commits, and a group of its own (``<group>-dry-run``) so it never takes
partitions from a real executor.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from datetime import datetime

import orjson
import structlog

from guardian.errors import ConfigError, DecodeError
from guardian.executor.apply import ApplyOptions, apply_to_target
from guardian.executor.command import Command, decode_command
from guardian.executor.http import ExecutorHttp
from guardian.executor.kube import KubeApi, LightkubeApi, load_kubeconfig
from guardian.executor.ledger import Ledger
from guardian.executor.metrics import ExecutorMetrics
from guardian.executor.report import CommandOutcome, audit_record, deploy_event
from guardian.executor.settings import ExecutorSettings
from guardian.executor.targets import TargetsFile, load_targets
from guardian.kafka.admin import compacted_topic_config, create_missing_topics
from guardian.kafka.sink import KafkaSink
from guardian.kafka.source import KafkaSource, Position, RawRecord
from guardian.kafka.state_store import read_latest
from guardian.wire.records import format_time
from guardian.wire.signing import check

log = structlog.get_logger(__name__)

_FETCH_TIMEOUT_MS = 500


class Executor:
    """``guardian execute``: one executor replica."""

    def __init__(
        self,
        settings: ExecutorSettings,
        metrics: ExecutorMetrics | None = None,
        api: KubeApi | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or ExecutorMetrics()
        self._api = api  # tests may bring their own; else lightkube on the kubeconfig
        self._stop = asyncio.Event()
        self.http_port: int | None = None
        self.ready = False  # the ledger is read back and the consumer started
        self._ledger: Ledger | None = None
        self._targets = TargetsFile()
        self._options = ApplyOptions(
            dry_run=settings.dry_run,
            conflict_retries=settings.conflict_retries,
            converge_timeout_s=settings.converge_timeout_s,
            poll_interval_s=settings.poll_interval_s,
        )

    def request_stop(self) -> None:
        """Begin draining: finish or interrupt the current batch, commit, exit."""
        if not self._stop.is_set():
            log.info("drain_started", grace_period_s=self.settings.grace_period_s)
        self._stop.set()

    async def run(self) -> None:
        """Run until a stop request; raise on fatal errors."""
        s = self.settings
        if not s.bootstrap_servers:
            raise ConfigError(
                "guardian execute needs Kafka: set GUARDIAN_BOOTSTRAP_SERVERS (the embedded "
                "broker lives inside `guardian run` and is not shared)"
            )
        bootstrap = s.bootstrap_servers
        self._targets = load_targets(s.targets_file)
        kafka = s.kafka_settings()
        if s.dry_run:
            kafka = kafka.model_copy(update={"group_id": f"{kafka.group_id}-dry-run"})
        async with AsyncExitStack() as stack:
            api = self._api
            if api is None:
                lightkube = LightkubeApi(load_kubeconfig(s.kubeconfig), timeout_s=s.kube_timeout_s)
                lightkube.check_contexts({t.context for t in self._targets.targets})
                api = await stack.enter_async_context(lightkube)
            if s.create_topics:
                await create_missing_topics(
                    kafka,
                    bootstrap,
                    {
                        s.command_topic: {},
                        s.deploy_topic: {},
                        s.audit_topic: {},
                        s.applied_topic: compacted_topic_config(kafka),
                    },
                )
            sink = await stack.enter_async_context(KafkaSink(kafka, bootstrap))
            ledger = self._ledger = Ledger(
                s.applied_topic, sink, lambda: read_latest(kafka, bootstrap, s.applied_topic)
            )
            known = await ledger.restore()
            http = await stack.enter_async_context(
                ExecutorHttp(s.executor_http_host, s.executor_http_port, self.metrics)
            )
            self.http_port = http.bound_port

            async def on_assignment(parts: frozenset[Position]) -> None:
                if parts:  # another replica may have applied what it just handed over
                    await ledger.restore()

            source = await stack.enter_async_context(
                KafkaSource(kafka, bootstrap, [s.command_topic], on_assignment)
            )
            http.ready = self.ready = True
            log.info(
                "executor_started",
                group_id=kafka.group_id,
                command_topic=s.command_topic,
                targets=len(self._targets.targets),
                ledger_commands=known,
                dry_run=s.dry_run,
                signing=s.signing_key is not None,
                http=f"{s.executor_http_host}:{http.bound_port}",
            )
            while not self._stop.is_set():
                records = await source.getmany(_FETCH_TIMEOUT_MS)
                if records:
                    await self._batch(api, sink, source, records)
            http.ready = self.ready = False
        log.info("drained")

    async def _batch(
        self, api: KubeApi, sink: KafkaSink, source: KafkaSource, records: list[RawRecord]
    ) -> None:
        """Act on a batch, one task per service (in record order within it); flush; commit."""
        first: dict[str, RawRecord] = {}
        done: dict[int, bool] = {}
        by_key: dict[bytes | None, list[int]] = {}
        for index, record in enumerate(records):
            by_key.setdefault(record.key, []).append(index)

        async def in_order(indexes: list[int]) -> None:
            # A pause and a rollback of one service must not race on the same workload.
            for index in indexes:
                done[index] = await self._handle(api, sink, records[index], first)

        async with asyncio.TaskGroup() as group:
            for indexes in by_key.values():
                group.create_task(in_order(indexes))
        await sink.flush()
        if self.settings.dry_run:
            return
        offsets: dict[Position, int] = {}
        blocked: set[Position] = set()
        for index, record in enumerate(records):
            position = (record.topic, record.partition)
            if position in blocked:
                continue
            if not done[index]:
                blocked.add(position)  # not finished: redelivered (and resumed) later
                continue
            offsets[position] = record.offset + 1
        await source.commit(offsets)

    async def _handle(
        self, api: KubeApi, sink: KafkaSink, record: RawRecord, first: dict[str, RawRecord]
    ) -> bool:
        """Act on one record; False when it must be read again (interrupted by a stop)."""
        now_ms = int(time.time() * 1000)
        try:
            command = decode_command(record.value)
        except DecodeError as exc:
            self.metrics.received.labels("invalid").inc()
            await self._refuse(sink, None, "invalid", exc.reason, now_ms, record)
            return True
        if command is None:
            self.metrics.received.labels("other").inc()
            return True
        self.metrics.received.labels(command.action).inc()
        problem = self._signature_problem(command)
        if problem is not None:
            await self._refuse(sink, command, problem[0], problem[1], now_ms, record)
            return True
        if self._expired(command, now_ms):
            reason = f"issued at {command.payload.get('issued_at')}, over max_command_age_s"
            await self._refuse(sink, command, "expired", reason, now_ms, record)
            return True
        if command.command_id in first and first[command.command_id] is not record:
            self.metrics.duplicates.inc()
            return True  # the same command twice in one batch: the first copy acts
        first[command.command_id] = record
        return await self._execute(api, sink, command, now_ms)

    def _signature_problem(self, command: Command) -> tuple[str, str] | None:
        key = self.settings.signing_key
        if key is None:
            return None
        if command.signature is None and not self.settings.require_signature:
            return None
        verdict = check(
            command.payload,
            key.get_secret_value().encode(),
            accept_legacy=self.settings.accept_legacy_signatures,
        )
        if verdict.ok:
            return None
        assert verdict.problem is not None  # noqa: S101 - check() names the problem of a failure
        reason = {
            "no signature": "unsigned",
            "signature mismatch": "forged",
        }.get(verdict.problem.value, verdict.problem.name.lower())
        return reason, str(verdict.problem.value)

    def _expired(self, command: Command, now_ms: int) -> bool:
        issued = command.payload.get("issued_at")
        try:
            issued_ms = datetime.fromisoformat(str(issued)).timestamp() * 1000
        except ValueError:
            return False  # no usable time: the signature and the ledger still guard it
        return now_ms - issued_ms > self.settings.max_command_age_s * 1000

    async def _refuse(
        self,
        sink: KafkaSink,
        command: Command | None,
        reason: str,
        detail: str,
        now_ms: int,
        record: RawRecord,
    ) -> None:
        self.metrics.refused.labels(reason).inc()
        log.warning(
            "executor_command_refused",
            reason=reason,
            detail=detail,
            command_id=command.command_id if command else None,
            service=command.service if command else None,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        if self.settings.dry_run:
            return
        source = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        audit = audit_record(
            "executor_refused",
            now_ms,
            command=command,
            command_id=str(command.payload.get("command_id")) if command else None,
            details={"reason": reason, "detail": detail, "source": source},
        )
        key = command.service.encode() if command else record.key
        await sink.send(self.settings.audit_topic, audit.model_dump_json().encode(), key=key)

    async def _execute(self, api: KubeApi, sink: KafkaSink, command: Command, now_ms: int) -> bool:
        s = self.settings
        assert self._ledger is not None  # noqa: S101 - set before the first batch
        bound = log.bind(
            command_id=command.command_id, deploy_id=command.deploy_id, service=command.service
        )
        entry = self._ledger.state_of(command.command_id)
        if entry is not None and entry.state == "done":
            self.metrics.duplicates.inc()
            bound.info("executor_duplicate", status=entry.status)
            return True
        resumed = entry is not None
        targets = self._targets.for_command(command.service, command.environment, command.regions)
        started = time.monotonic()
        if targets and not s.dry_run:
            details = {"deploy_id": command.deploy_id, "targets": [t.ref for t in targets]}
            await self._ledger.applying(command.command_id, format_time(now_ms), details)
        outcomes = tuple(
            [
                await apply_to_target(
                    api, command, target, self._options, resumed=resumed, stop=self._stop
                )
                for target in targets
            ]
        )
        outcome = CommandOutcome.of(outcomes)
        if not targets:
            regions = ",".join(command.regions) or "*"
            where = f"{command.service}/{command.environment}/{regions}"
            outcome = CommandOutcome("failed", f"no target in targets.yaml for {where}", ())
            self.metrics.failed.labels("no_target").inc()
        self._count(command, outcome)
        bound.info(
            "executor_command_done",
            action=command.action,
            status=outcome.status,
            reason=outcome.reason,
            resumed=resumed,
            took_s=round(time.monotonic() - started, 3),
        )
        if outcome.status == "interrupted":
            return False
        if s.dry_run:
            return True
        done_ms = int(time.time() * 1000)
        event = deploy_event(command, outcome, done_ms)
        if event is not None:
            await sink.send(s.deploy_topic, orjson.dumps(event), key=command.service.encode())
        audit = audit_record(
            f"executor_{outcome.status}", done_ms, command=command, details=outcome.details()
        )
        await sink.send(
            s.audit_topic, audit.model_dump_json().encode(), key=command.service.encode()
        )
        await self._ledger.done(
            command.command_id, outcome.status, format_time(done_ms), outcome.details()
        )
        return True

    def _count(self, command: Command, outcome: CommandOutcome) -> None:
        for target in outcome.targets:
            self.metrics.conflicts.inc(target.conflicts)
            if target.status in ("rolled_back", "paused"):
                self.metrics.applied.labels(command.action, target.kind).inc()
                if target.converge_s is not None:
                    self.metrics.converge_seconds.labels(target.kind).observe(target.converge_s)
            elif target.status == "failed":
                self.metrics.failed.labels(target.code).inc()

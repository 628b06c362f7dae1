"""``Notifier``: consumes the notification outbox and delivers each entry to its subscribers.

One **lane** (an asyncio task with a queue) per destination delivers that
destination's messages in outbox order, with retries; lanes are independent,
so SMTP being down never delays Slack. An outbox offset is committed when
every lane finished the entries up to it (``OffsetTracker``); after each
delivery the incident's state is written to the state topic first, so a
restart neither loses nor repeats a message. Permanent failures are logged
once, audited (``notification_failed``) and counted, and the entry moves on.

Lifecycle: an async context manager with no I/O in ``__init__``; ``run``
consumes until cancelled; ``stop`` commits what is finished and is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import dataclass, field
from types import TracebackType

import orjson
import structlog

from guardian.config.settings import Settings
from guardian.errors import DecodeError
from guardian.kafka.outbox import (
    STATE_KEY_PREFIX,
    OffsetTracker,
    Slot,
    StateStore,
    outbox_source,
)
from guardian.kafka.source import KafkaSource, RawRecord
from guardian.metrics import GuardianMetrics
from guardian.notify.grouping import Grouper, IncidentState, Plan, dest_key
from guardian.notify.notice import Notice, parse_entry
from guardian.notify.options import NotifyOptions
from guardian.notify.render import email_message, slack_message, subject
from guardian.notify.retry import DeliveryError, with_retries
from guardian.notify.senders import EmailSender, SlackSender
from guardian.notify.subscriptions import (
    CompiledSubscription,
    Destination,
    load_subscriptions,
    route,
)
from guardian.wire.records import AuditRecord, format_time

log = structlog.get_logger(__name__)

Job = tuple[Notice, Slot]


@dataclass
class _Lane:
    destination: Destination
    queue: asyncio.Queue[Job] = field(default_factory=asyncio.Queue)


class Notifier:
    """Delivers outbox entries to Slack and email, at least once and without duplicates."""

    def __init__(
        self,
        settings: Settings,
        bootstrap_servers: str,
        metrics: GuardianMetrics,
        options: NotifyOptions | None = None,
    ) -> None:
        self._settings = settings
        self._bootstrap = bootstrap_servers
        self._metrics = metrics
        self._options = options or NotifyOptions()
        self._subscriptions: list[CompiledSubscription] | None = None
        self._grouper = Grouper(self._options)
        self._tracker = OffsetTracker()
        self._lanes: dict[str, _Lane] = {}
        self._progress = asyncio.Event()
        self._source: KafkaSource | None = None
        self._store: StateStore | None = None
        self._slack: SlackSender | None = None
        self._email: EmailSender | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._started = False

    async def start(self) -> None:
        """Load subscriptions and saved state, connect to Kafka."""
        if self._started:
            return
        s = self._settings
        if s.subscriptions is not None:
            self._subscriptions = load_subscriptions(s.subscriptions)
        token = s.slack_token.get_secret_value() if s.slack_token else None
        self._slack = SlackSender(token, s.slack_base_url, self._options.send_timeout_s)
        self._email = EmailSender(s, self._options.send_timeout_s, self._options.smtp_ca_file)
        self._started = True
        self._store = StateStore(s, self._bootstrap)
        await self._store.start()
        self._restore(await self._store.load())
        self._source = outbox_source(s, self._bootstrap)
        await self._source.start()
        log.info(
            "notifier_started",
            topic=s.notification_topic,
            subscriptions=len(self._subscriptions or ()),
        )

    def _restore(self, records: dict[bytes, bytes]) -> None:
        for value in records.values():
            data = orjson.loads(value)
            self._grouper.restore(
                data["destination"], data["incident"], IncidentState.from_dict(data["state"])
            )

    async def run(self) -> None:
        """Consume the outbox and deliver until cancelled."""
        await self.start()
        assert self._source is not None  # noqa: S101 - set by start()
        self._run_task = asyncio.current_task()
        async with asyncio.TaskGroup() as lanes:
            while True:
                if self._tracker.pending >= self._options.max_in_flight:
                    self._progress.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._progress.wait(), 0.5)
                else:
                    records = await self._source.getmany(self._options.poll_timeout_ms)
                    for record in records:
                        self._accept(record, lanes)
                await self._commit()

    def _accept(self, record: RawRecord, lanes: asyncio.TaskGroup) -> None:
        position = (record.topic, record.partition)
        try:
            notice = parse_entry(orjson.loads(record.value))
        except (orjson.JSONDecodeError, DecodeError) as exc:
            log.warning("outbox_entry_invalid", reason=str(exc), offset=record.offset)
            self._metrics.notifications.labels(channel="none", outcome="invalid").inc()
            self._tracker.add(position, record.offset, 0)
            return
        destinations = (
            []
            if self._subscriptions is None
            else route(
                self._subscriptions,
                service=notice.service,
                environment=notice.environment,
                severity=None if notice.kind == "confirmation" else notice.severity,
                regions=notice.regions,
            )
        )
        slot = self._tracker.add(position, record.offset, len(destinations))
        for destination in destinations:
            key = dest_key(destination)
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = _Lane(destination)
                lanes.create_task(self._lane(lane), name=f"notify-{destination.label}")
            lane.queue.put_nowait((notice, slot))

    async def _lane(self, lane: _Lane) -> None:
        while True:
            notice, slot = await lane.queue.get()
            await self._deliver(lane.destination, notice)
            OffsetTracker.done(slot)
            self._progress.set()

    async def _deliver(self, destination: Destination, notice: Notice) -> None:
        plans = self._grouper.plan(destination, notice)
        if not plans:
            self._metrics.notifications.labels(
                channel=destination.channel, outcome="suppressed"
            ).inc()
        for plan in plans:
            ts = await self._send(plan)
            state = self._grouper.record(plan, ts)
            if plan.kind != "storm":
                await self._save(destination, plan.incident, state)

    async def _send(self, plan: Plan) -> str | None:
        destination = plan.destination
        slack, email = self._slack, self._email
        if slack is None or email is None:
            raise DeliveryError("the notifier is not started", retriable=False)

        async def attempt() -> str | None:
            if destination.kind == "email":
                message = email_message(plan)
                if message is not None:
                    await email.send(destination.target, message)
                return None
            if destination.kind == "webhook":
                await slack.webhook(destination.target, destination.label, slack_message(plan))
                return None
            thread = self._grouper.thread_for(plan)
            return await slack.post(destination.target, slack_message(plan), thread)

        def on_retry(exc: DeliveryError, attempt_no: int, delay: float) -> None:
            self._metrics.notifications.labels(channel=destination.channel, outcome="retry").inc()
            log.warning(
                "notification_retry",
                destination=destination.label,
                error=str(exc),
                attempt=attempt_no + 1,
                delay_s=round(delay, 3),
            )

        try:
            ts = await with_retries(attempt, self._options, on_retry=on_retry)
        except DeliveryError as exc:
            await self._permanent_failure(plan, exc)
            return None
        self._metrics.notifications.labels(channel=destination.channel, outcome="sent").inc()
        log.info(
            "notification_sent",
            destination=destination.label,
            kind=plan.kind,
            incident=plan.incident,
            service=plan.notice.service,
            notification_id=plan.notice.notification_id,
        )
        return ts

    async def _permanent_failure(self, plan: Plan, exc: DeliveryError) -> None:
        notice, destination = plan.notice, plan.destination
        self._metrics.notifications.labels(channel=destination.channel, outcome="failed").inc()
        log.error(
            "notification_failed",
            destination=destination.label,
            error=str(exc),
            service=notice.service,
            notification_id=notice.notification_id,
        )
        material = f"{notice.notification_id}|{destination.label}|{plan.kind}".encode()
        audit = AuditRecord(
            audit_id="au-" + hashlib.sha256(material).hexdigest()[:24],
            at=format_time(notice.at_ms),
            event="notification_failed",
            service=notice.service,
            environment=notice.environment,
            deploy_id=notice.deploy_id,
            rule=notice.rule,
            action=notice.action,
            actor="guardian",
            command_id=notice.command_id,
            details={
                "destination": destination.label,
                "notification_id": notice.notification_id,
                "subject": subject(plan),
                "error": str(exc),
            },
        )
        assert self._store is not None  # noqa: S101 - set by start()
        await self._store.write(
            self._settings.audit_topic, notice.service.encode(), audit.model_dump(mode="json")
        )

    async def _save(self, destination: Destination, incident: str, state: IncidentState) -> None:
        assert self._store is not None  # noqa: S101 - set by start()
        dkey = dest_key(destination)
        key = (
            STATE_KEY_PREFIX
            + hashlib.sha256(f"{dkey}|{incident}".encode()).hexdigest()[:32].encode()
        )
        value = {
            "kind": "notifier_incident",
            "destination": dkey,
            "incident": incident,
            "state": state.to_dict(),
        }
        await self._store.write(self._settings.state_topic, key, value)

    async def _commit(self) -> None:
        if self._source is not None:
            await self._source.commit(self._tracker.committable())

    async def stop(self) -> None:
        """Stop delivering, commit what is finished, disconnect; safe to call twice."""
        task, self._run_task = self._run_task, None
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        source, self._source = self._source, None
        if source is not None:
            with contextlib.suppress(Exception):
                await source.commit(self._tracker.committable())
            await source.stop()
        store, self._store = self._store, None
        if store is not None:
            await store.stop()
        slack, self._slack = self._slack, None
        if slack is not None:
            await slack.close()

    async def __aenter__(self) -> Notifier:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

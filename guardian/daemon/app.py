"""The daemon's lifecycle: open everything, consume until told to stop, drain, close.

One ``AsyncExitStack`` opens the broker (embedded when none is configured),
the sink, the control plane and the source; one ``TaskGroup`` runs the
consume loop beside the background loops (hot reload, lag). A crash in any
task stops the daemon with a non-zero exit so the orchestrator restarts it;
a stop request drains: the current batch is finished, written, committed.
A drain gives up retrying a broker that is away once the grace period is
spent (exit 1; the batch is re-delivered after a restart). The embedded
broker is the first thing opened and the last closed, after every client.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import structlog
from prometheus_client import Gauge

from guardian.actions.incidents import IncidentEvents
from guardian.actions.outputs import OutputRecord, Role
from guardian.api import ManualRollbacks
from guardian.config.settings import Settings
from guardian.daemon.health import Readiness
from guardian.daemon.http import ControlPlane, RouteInstaller
from guardian.daemon.pipeline import BatchResult, Pipeline
from guardian.daemon.refusals import RefusalReport
from guardian.daemon.reload import RuleReloader
from guardian.daemon.state import StateKeeper, owned_partitions
from guardian.delivery import Deadline, deliver_with_retry
from guardian.engine import Engine, load_rules
from guardian.engine.rules.horizon import history_horizon_ms
from guardian.errors import GuardianError
from guardian.inputs.adapters import Inputs
from guardian.inputs.adapters.webhook import DeployWebhook
from guardian.kafka.admin import check_copartitioned, ensure_topics
from guardian.kafka.embedded import EmbeddedBroker
from guardian.kafka.sink import KafkaSink
from guardian.kafka.source import KafkaSource
from guardian.kafka.state_store import read_latest
from guardian.metrics import GuardianMetrics
from guardian.mqtt.loop import run_mqtt
from guardian.mqtt.source import MqttSource
from guardian.notify.notifier import Notifier
from guardian.notify.options import options_from_settings

log = structlog.get_logger(__name__)

_LAG_INTERVAL_S = 5.0
_IDLE_TICK_MS = 1000
_BROKER_PROBE_TIMEOUT_S = 3.0


class Daemon:
    """``guardian run``: the whole guardian in one process."""

    def __init__(
        self,
        settings: Settings,
        metrics: GuardianMetrics | None = None,
        route_installers: tuple[RouteInstaller, ...] = (),
    ) -> None:
        self.settings = settings
        self.metrics = metrics or GuardianMetrics()
        self.readiness = Readiness()
        self._route_installers = route_installers
        self._stop = asyncio.Event()
        # time.monotonic() by which a drain must be done; None while not draining.
        self._drain_deadline: float | None = None
        self._broker: EmbeddedBroker | None = None
        self.bootstrap_servers: str | None = settings.bootstrap_servers
        self.http_port: int | None = None
        self._reloader: RuleReloader | None = None
        # Judging a batch and rebuilding state on a rebalance never interleave.
        self._judge_lock = asyncio.Lock()

    def request_reload(self) -> None:
        """Reload the rules now (SIGHUP)."""
        if self._reloader is not None:
            self._reloader.request()

    def request_stop(self) -> None:
        """Begin draining: finish the current batch, commit, exit."""
        if not self._stop.is_set():
            log.info("drain_started", grace_period_s=self.settings.grace_period_s)
            self._drain_deadline = time.monotonic() + self.settings.grace_period_s
        self._stop.set()

    def stop_broker_now(self) -> None:
        """Stop the embedded broker without the event loop, before a forced exit; safe twice."""
        if self._broker is not None:
            self._broker.stop_now()

    def _load_engine(self) -> tuple[Engine, int]:
        """The engine on the configured rules, and the rules' history horizon in ms."""
        s = self.settings
        rules = load_rules(s.rules)  # invalid rules: refuse to start (ConfigError)
        lateness_ms = int(s.allowed_lateness_s * 1000)
        horizon_ms = history_horizon_ms(rules, lateness_ms)
        engine = Engine(
            rules,
            max_series=s.series_cap,
            allowed_lateness_ms=lateness_ms,
            # Never forget what a rule could still read.
            idle_ttl_ms=max(int(s.idle_service_ttl_s * 1000), horizon_ms)
            if s.idle_service_ttl_s
            else None,
        )
        self.metrics.rules_loaded.set(len(rules))
        for topic in (s.deploy_topic, s.metric_topic):
            self.metrics.events_consumed.labels(topic)  # export 0 before the first event
        self.readiness.set("rules_loaded", True)
        log.info("rules_loaded", path=str(s.rules), rules=len(rules))
        return engine, horizon_ms

    async def run(self) -> None:
        """Run until a stop request; raise on fatal errors."""
        s = self.settings
        engine, horizon_ms = self._load_engine()
        async with AsyncExitStack() as stack:
            bootstrap = s.bootstrap_servers
            if not bootstrap:
                s = self.settings = s.for_embedded_broker()
                broker = self._broker = await stack.enter_async_context(EmbeddedBroker())
                bootstrap = broker.bootstrap_servers
                log.warning(
                    "embedded_broker_started",
                    bootstrap_servers=bootstrap,
                    pid=broker.pid,
                    note="no Kafka configured (GUARDIAN_BOOTSTRAP_SERVERS): using the in-memory "
                    "embedded broker; its data is lost on exit, not for production",
                )
            self.bootstrap_servers = bootstrap
            if s.create_topics:
                await ensure_topics(s, bootstrap)
            await check_copartitioned(s, bootstrap)
            self.readiness.set("broker_connected", True)

            sink = await stack.enter_async_context(KafkaSink(s, bootstrap))
            manual = await stack.enter_async_context(
                ManualRollbacks(s, bootstrap, sink, engine.deploy_of, self.metrics)
            )
            inputs = await stack.enter_async_context(
                Inputs(s, bootstrap, self.metrics, cdevent_topics=s.cdevent_topics)
            )
            webhook = DeployWebhook(
                inputs.writer,
                inputs.tokens,
                s.deploy_topic,
                self.metrics,
                max_future_skew_ms=int(s.max_future_skew_s * 1000),
            )
            control = await stack.enter_async_context(
                ControlPlane(
                    s.http_host,
                    s.http_port,
                    self.readiness,
                    self.metrics,
                    (*self._route_installers, manual.install, inputs.install, webhook.install),
                )
            )
            self.http_port = control.bound_port
            log.info("http_listening", address=f"{s.http_host}:{control.bound_port}")
            keeper = StateKeeper(engine)

            async def on_assignment(parts: frozenset[tuple[str, int]]) -> None:
                # The fetcher may already hold records of the new partitions: the lock
                # keeps them from being judged before their services' state is restored.
                async with self._judge_lock:
                    partitions = source.partition_count(s.metric_topic) or s.topic_partitions
                    owned = owned_partitions(parts, (s.deploy_topic, s.metric_topic))
                    await self._hand_over(sink, keeper.handover_outputs(owned, partitions))
                    await keeper.rebalance(
                        owned,
                        partitions,
                        lambda keep: read_latest(s, bootstrap, s.state_topic, keep=keep),
                    )
                    self.metrics.owned_partitions.set(len(owned))
                self.readiness.set("partitions_assigned", bool(parts))

            source = await stack.enter_async_context(
                KafkaSource(
                    s,
                    bootstrap,
                    [s.deploy_topic, s.metric_topic],
                    on_assignment,
                    # A group's first start passes over history no rule can still use.
                    history_horizon_ms=horizon_ms if s.auto_offset_reset == "earliest" else None,
                )
            )
            notifier = await stack.enter_async_context(
                Notifier(s, bootstrap, self.metrics, options_from_settings(s))
            )
            pipeline = self._pipeline(engine, sink, keeper)
            mqtt = (
                await stack.enter_async_context(MqttSource(s, self.readiness))
                if s.mqtt_url
                else None
            )
            reloader = RuleReloader(s.rules, engine, sink, s.audit_topic, self.metrics)
            self._reloader = reloader
            log.info(
                "guardian_started",
                group_id=s.group_id,
                bootstrap_servers=bootstrap,
                fetch_max_wait_ms=s.fetch_wait_ms,
            )

            async with asyncio.TaskGroup() as tasks:
                background = [
                    tasks.create_task(reloader.run(), name="rule-reload"),
                    tasks.create_task(self._report_lag(source, engine), name="lag"),
                    tasks.create_task(notifier.run(), name="notifier"),
                    tasks.create_task(manual.run(), name="manual-rollbacks"),
                ]
                # Not in `background`: the OTLP bridge drains its own batch when asked to
                # stop, retrying a broker that is away until the same deadline as below.
                tasks.create_task(inputs.run(self._stop, self._drain_limit), name="inputs")
                if mqtt is not None:
                    # Not in `background`: it drains its own batch when asked to stop.
                    tasks.create_task(
                        run_mqtt(mqtt, pipeline, self._stop, self.readiness, self._drain_limit),
                        name="mqtt",
                    )
                await self._consume(source, pipeline)
                for task in background:
                    task.cancel()
            log.info("drained", watermark_ms=pipeline.watermark_ms)

    def _pipeline(self, engine: Engine, sink: KafkaSink, keeper: StateKeeper) -> Pipeline:
        s = self.settings
        topics: dict[Role, str] = {
            "command": s.command_topic,
            "audit": s.audit_topic,
            "notification": s.notification_topic,
            "dlq": s.dlq_topic,
            "state": s.state_topic,
            "deploy": s.deploy_topic,
            "metric": s.metric_topic,
        }
        if s.incident_topic:
            topics["incident"] = s.incident_topic
        return Pipeline(
            engine,
            sink,
            topics,
            self.metrics,
            signing_key=s.signing_key.get_secret_value().encode() if s.signing_key else None,
            max_future_skew_ms=int(s.max_future_skew_s * 1000),
            dlq_max_original_bytes=s.dlq_max_original_bytes,
            state=keeper,
            deploy_lookup=engine.deploy_of,
            incidents=IncidentEvents(f"/guardian/{s.group_id}") if s.incident_topic else None,
        )

    async def _consume(self, source: KafkaSource, pipeline: Pipeline) -> None:
        loop = asyncio.get_running_loop()
        last_record_at = loop.time()
        while not self._stop.is_set():
            records = await source.getmany(timeout_ms=200)
            if not records:
                idle_ms = int((loop.time() - last_record_at) * 1000)
                if idle_ms >= _IDLE_TICK_MS:
                    idle = pipeline.idle(idle_ms)
                    if idle.outputs:
                        await self._deliver(pipeline, idle)
                continue
            last_record_at = loop.time()
            async with self._judge_lock:
                result = await pipeline.judge_in_chunks(records)
                await self._deliver(pipeline, result)
                # Committed while the next batch is fetched and judged; a revocation
                # waits for it, and so does the drain below.
                await source.commit_next(result.next_offsets)
        handover = pipeline.handover()
        if handover.outputs:
            await self._deliver(pipeline, handover)
        await source.settle_commits()

    async def _hand_over(self, sink: KafkaSink, records: list[OutputRecord]) -> None:
        """Write the state of services about to move away; a failure only costs their evidence."""
        if not records:
            return

        async def write() -> None:
            for record in records:
                await sink.send(self.settings.state_topic, record.value, key=record.key)
            await sink.flush()

        try:
            await deliver_with_retry(
                write, transport="kafka", readiness=self.readiness, deadline=self._drain_limit
            )
        except GuardianError as exc:
            log.warning("handover_state_not_written", services=len(records), error=str(exc))
            return
        log.info("handover_state_written", services=len(records))

    async def _deliver(self, pipeline: Pipeline, result: BatchResult) -> None:
        """Write a batch's outputs, retrying a broker that is away until it comes back.

        While draining, only until the grace period is spent: then a
        non-retriable SinkError ends the daemon (its offsets stay uncommitted).
        """

        await deliver_with_retry(
            lambda: pipeline.deliver(result),
            transport="kafka",
            readiness=self.readiness,
            deadline=self._drain_limit,
        )

    def _drain_limit(self) -> Deadline | None:
        """The drain's deadline, the same for every loop that delivers; None while running."""
        if self._drain_deadline is None:
            return None
        spent = f"the grace period of {self.settings.grace_period_s:g}s is spent"
        return Deadline(self._drain_deadline, spent)

    async def _report_lag(self, source: KafkaSource, engine: Engine) -> None:
        """Every few seconds: engine gauges, consumer lag, and whether the broker answers."""
        # The engine and source keep running totals; Prometheus counters take increments.
        exported: dict[str, int] = {}
        rejected, expired = self.metrics.events_rejected, self.metrics.services_expired
        refusals = RefusalReport(self.metrics)
        reported_errors: set[str] = set()
        lag_labels: set[tuple[str, str]] = set()
        while True:
            await asyncio.sleep(_LAG_INTERVAL_S)
            for rule, error in engine.rule_errors.items():
                if rule not in reported_errors:
                    reported_errors.add(rule)
                    self.metrics.rule_errors.labels(rule).inc()
                    log.error("rule_disabled", rule=rule, error=error)
            stats = engine.stats
            refusals.update(stats)
            self.metrics.tracked_series.set(stats.tracked_series)
            self.metrics.active_deploys.set(stats.active_deploys)
            for name, total in (
                ("late", stats.late_events),
                ("duplicate", stats.duplicate_events),
                ("series_cap", stats.series_cap_rejections),
                ("history", source.skipped),
                ("expired", stats.expired_services),
            ):
                delta = total - exported.get(name, 0)
                if delta <= 0:
                    continue
                exported[name] = total
                # One line per reason per interval, not per event. A label appears on
                # /metrics only once something was counted under it.
                if name == "expired":
                    expired.inc(delta)
                    log.info("services_expired", count=delta, total=total)
                else:
                    # Says why events were not judged (late: a producer's clock or a backlog).
                    rejected.labels(name).inc(delta)
                    log.info("events_not_judged", reason=name, count=delta, total=total)
            try:
                lags = await asyncio.wait_for(source.lag(), timeout=_BROKER_PROBE_TIMEOUT_S)
            except (TimeoutError, GuardianError, OSError) as exc:
                # An idle consumer cannot tell a quiet topic from a dead broker; this probe can.
                if self.readiness.conditions.get("broker_connected"):
                    log.warning("broker_unresponsive", error=repr(exc))
                self.readiness.set("broker_connected", False)
                continue
            if not self.readiness.conditions.get("broker_connected"):
                log.info("broker_reconnected")
            self.readiness.set("broker_connected", True)
            lag_labels = export_lag(self.metrics.consumer_lag, lags, lag_labels)


def export_lag(
    gauge: Gauge, lags: dict[tuple[str, int], int], exported: set[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Set the lag of each partition held now; drop the series of partitions given up.

    A partition that moved to another replica would otherwise keep its last
    lag here for ever, and a dashboard summing the group's lag would count it twice.
    """
    current = {(topic, str(partition)): lag for (topic, partition), lag in lags.items()}
    for labels, lag in current.items():
        gauge.labels(*labels).set(lag)
    for labels in exported - current.keys():
        gauge.remove(*labels)
    return set(current)

"""Every Prometheus metric the guardian exports, defined in one place.

Metrics live on a ``CollectorRegistry`` passed in, so each test gets a fresh
one and two daemons in one process never collide. Names follow Prometheus
conventions (``_total`` counters, base units, ``guardian_`` prefix); the
README's metrics reference lists them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from guardian import __version__

# Ingest → command acknowledged: milliseconds matter, minutes are a failure.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class GuardianMetrics:
    """The guardian's metrics on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.build_info = Info("guardian_build", "Version of the running guardian", registry=r)
        self.build_info.info({"version": __version__})
        self.events_consumed = Counter(
            "guardian_events_consumed",
            "Records taken from an input topic, valid or not",
            ["topic"],
            registry=r,
        )
        self.events_rejected = Counter(
            "guardian_events_rejected",
            "Input records not judged, by reason (invalid, late, series_cap, duplicate, history)",
            ["reason"],
            registry=r,
        )
        self.owned_partitions = Gauge(
            "guardian_owned_partitions",
            "Input partitions whose services this replica judges",
            registry=r,
        )
        self.events_forwarded = Counter(
            "guardian_events_forwarded",
            "MQTT events passed on to Kafka for the replica that owns their service",
            registry=r,
        )
        self.dead_letters = Counter(
            "guardian_dead_letters", "Records written to the dead-letter topic", registry=r
        )
        self.decisions = Counter(
            "guardian_decisions",
            "Decisions made, by rule and action",
            ["rule", "action"],
            registry=r,
        )
        self.rollback_commands = Counter(
            "guardian_rollback_commands",
            "Rollback commands acknowledged by the broker, by trigger",
            ["trigger"],
            registry=r,
        )
        self.decision_latency = Histogram(
            "guardian_decision_latency_seconds",
            "From taking the deciding record to its command being acknowledged",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "guardian_batch_duration_seconds",
            "Time to decide, write and commit one consumed batch",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "guardian_consumer_lag",
            "Records behind the end of each assigned input partition",
            ["topic", "partition"],
            registry=r,
        )
        self.notifications = Counter(
            "guardian_notifications",
            "Notification deliveries by channel and outcome",
            ["channel", "outcome"],
            registry=r,
        )
        self.active_deploys = Gauge(
            "guardian_active_deploys", "Deploys currently watched", registry=r
        )
        self.tracked_series = Gauge(
            "guardian_tracked_series", "Metric series held in window state", registry=r
        )
        self.series_refused = Counter(
            "guardian_series_refused",
            "Metric events refused at the series cap (memory_budget_mb or max_series), by "
            "reason: new_service (a name never seen), new_series (a known service's new "
            "region or cohort); series of a service with a live deploy are never refused",
            ["reason"],
            registry=r,
        )
        self.series_cap = Gauge(
            "guardian_series_cap",
            "Series the engine admits without a live deploy (from memory_budget_mb)",
            registry=r,
        )
        self.services_expired = Counter(
            "guardian_services_expired",
            "Services forgotten after idle_service_ttl_s without events or a live deploy",
            registry=r,
        )
        self.rule_reloads = Counter(
            "guardian_rule_reloads", "Rule reloads by outcome", ["outcome"], registry=r
        )
        self.rule_errors = Counter(
            "guardian_rule_errors",
            "Rules disabled after failing to evaluate (until the next reload)",
            ["rule"],
            registry=r,
        )
        self.rules_loaded = Gauge("guardian_rules_loaded", "Rules in force", registry=r)
        self.input_samples = Counter(
            "guardian_input_samples",
            "Samples read from OTLP records and remote-write requests",
            ["input"],
            registry=r,
        )
        self.input_samples_skipped = Counter(
            "guardian_input_samples_skipped",
            "Input samples not converted, by reason (unmapped_metric, no_service, ...)",
            ["input", "reason"],
            registry=r,
        )
        self.input_events = Counter(
            "guardian_input_events",
            "Metric events converted from an input and acknowledged on the metric topic",
            ["input"],
            registry=r,
        )
        self.input_batches = Counter(
            "guardian_input_batches",
            "OTLP records and remote-write requests by outcome",
            ["input", "outcome"],
            registry=r,
        )
        self.input_series = Gauge(
            "guardian_input_series",
            "Cumulative series an input converter remembers",
            ["input"],
            registry=r,
        )
        self.input_series_evicted = Counter(
            "guardian_input_series_evicted",
            "Cumulative series forgotten at inputs_max_series (they restart from a baseline)",
            ["input"],
            registry=r,
        )
        self.ready = Gauge("guardian_ready", "1 when the guardian is ready to judge", registry=r)

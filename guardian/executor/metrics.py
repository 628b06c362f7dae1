"""Every Prometheus metric of ``guardian execute``, on a registry passed in.

Names carry the ``guardian_executor_`` prefix so one Prometheus scrapes the
daemon and the executor without a clash; reasons are small fixed sets (the
``code`` of an outcome, the signature problem), never free text.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from guardian import __version__

# A Deployment's rollout takes seconds to minutes; the timeout default is 5 minutes.
_CONVERGE_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class ExecutorMetrics:
    """The executor's metrics on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        Info("guardian_executor_build", "Version of the running executor", registry=r).info(
            {"version": __version__}
        )
        self.received = Counter(
            "guardian_executor_commands_received",
            "Records taken from the command topic, by kind (rollback, pause, other, invalid)",
            ["kind"],
            registry=r,
        )
        self.applied = Counter(
            "guardian_executor_applied",
            "Commands applied and converged, by action and target kind",
            ["action", "kind"],
            registry=r,
        )
        self.refused = Counter(
            "guardian_executor_refused",
            "Commands refused before anything was read or patched, by reason",
            ["reason"],
            registry=r,
        )
        self.failed = Counter(
            "guardian_executor_failed",
            "Targets a command could not be applied to, by reason",
            ["reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "guardian_executor_duplicates",
            "Commands skipped because the ledger says they were applied already",
            registry=r,
        )
        self.conflicts = Counter(
            "guardian_executor_conflicts",
            "409 Conflict answers retried on fresh state",
            registry=r,
        )
        self.converge_seconds = Histogram(
            "guardian_executor_converge_seconds",
            "From the patch to the finished rollout, by target kind",
            ["kind"],
            buckets=_CONVERGE_BUCKETS,
            registry=r,
        )
        self.ready = Gauge(
            "guardian_executor_ready", "1 when the executor is ready to apply", registry=r
        )

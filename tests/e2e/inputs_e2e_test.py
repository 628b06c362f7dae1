"""Drop-in inputs end to end: a real Prometheus and OpenTelemetry SDK exports into ``guardian run``.

Two canary releases run side by side through the default rule pack:
``checkout`` goes bad (30% 500s, 400 ms), ``cart`` stays healthy (0.5% 500s,
40 ms). Each must end in exactly one rollback command for ``checkout`` and
none for ``cart`` — with the metrics arriving only as Prometheus remote
write, or only as OTLP records on Kafka.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guardian.config.settings import Settings
from tests.e2e.support import guardian_process, log_tail, settings_env, wait_exit, wait_ready
from tests.integration.inputs.prometheus import (
    Exporter,
    Target,
    prometheus,
    prometheus_config,
    prometheus_log,
    require_prometheus,
)
from tests.integration.inputs.support import INGEST, INGEST_TOKEN
from tests.support.events import deploy
from tests.support.kafka import produce, produce_json, read_for, read_until, unique
from tests.support.manual import write_tokens
from tests.unit.inputs.builders import SdkService

pytestmark = pytest.mark.kafka

BAD = {"error_rate": 0.3, "latency_s": 0.4}
HEALTHY = {"error_rate": 0.005, "latency_s": 0.04}
RUN_S = 60  # the canary rules need 30 s of evidence (window and `for`)


def _deploys(now_ms: int) -> list[dict[str, Any]]:
    return [
        deploy(deploy_id=f"d-{service}", service=service, strategy="canary", at_ms=now_ms)
        for service in ("checkout", "cart")
    ]


def _rollbacks_of(deploy_id: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda seen: any(c.get("deploy_id") == deploy_id for c in seen)


def _check_commands(commands: list[dict[str, Any]]) -> None:
    rolled_back = sorted({c["deploy_id"] for c in commands if c["kind"] == "rollback_command"})
    assert rolled_back == ["d-checkout"], commands
    command = next(c for c in commands if c["deploy_id"] == "d-checkout")
    assert command["service"] == "checkout"
    assert command["trigger"] == "automatic"
    assert command["traffic"]["action"] == "set_weight"
    assert command["traffic"]["weight"] == 0
    assert (command["from_version"], command["to_version"]) == ("2.4.1", "2.4.0")
    assert command["rule"] in {"canary-error-rate", "canary-latency-p95", "error-rate-critical"}


async def test_prometheus_remote_write_rolls_back_the_bad_canary_only(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """A real Prometheus scrapes two exporters and remote-writes them to the guardian."""
    require_prometheus()
    tokens = write_tokens(tmp_path / "tokens.yaml", INGEST)
    settings = settings_factory(tokens_file=tokens)
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    exporters = {"checkout": Exporter(), "cart": Exporter()}
    targets = [
        Target(e.port, {"service": name, "cohort": "canary", "version": "2.4.1"})
        for name, e in exporters.items()
    ]
    config = prometheus_config(targets, settings.http_port, INGEST_TOKEN)
    with guardian_process(settings_env(settings), log_path=tmp_path / "g.log") as process:
        await wait_ready(settings.http_port, process)
        for exporter in exporters.values():
            exporter.start()
        try:
            await produce_json(bootstrap, settings.deploy_topic, _deploys(time.time_ns() // 10**6))
            with prometheus(config, tmp_path):
                loop = asyncio.get_running_loop()
                deadline = loop.time() + RUN_S
                commands: list[dict[str, Any]] = []
                while loop.time() < deadline and not _rollbacks_of("d-checkout")(commands):
                    exporters["checkout"].serve(40, **BAD)
                    exporters["cart"].serve(40, **HEALTHY)
                    commands = await read_for(bootstrap, settings.command_topic, 0.5)
                # Traffic goes on a little: a command for the healthy canary would show now.
                for _ in range(6):
                    exporters["checkout"].serve(40, **BAD)
                    exporters["cart"].serve(40, **HEALTHY)
                    await asyncio.sleep(0.5)
                commands = await read_for(bootstrap, settings.command_topic, 1.0)
        finally:
            for exporter in exporters.values():
                exporter.stop()
        process.send_signal(signal.SIGTERM)
        assert await wait_exit(process) == 0
    assert commands, f"no command\n{log_tail(process)}\n{prometheus_log(tmp_path)}"
    _check_commands(commands)


async def test_otlp_records_from_the_sdk_roll_back_the_bad_canary_only(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """SDK exports (cumulative, otlp_proto) on an OTLP topic, as the Collector's exporter writes."""
    topic = unique("otlp_metrics")
    settings = settings_factory(otlp_topics=[topic])
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    with guardian_process(settings_env(settings), log_path=tmp_path / "g.log") as process:
        await wait_ready(settings.http_port, process)
        resource = {"deployment.environment.name": "production", "deployment.cohort": "canary"}
        services = {
            name: SdkService({**resource, "service.name": name, "service.version": "2.4.1"})
            for name in ("checkout", "cart")
        }
        await produce_json(bootstrap, settings.deploy_topic, _deploys(time.time_ns() // 10**6))
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + RUN_S
            commands: list[dict[str, Any]] = []
            ticks = 0
            while loop.time() < deadline and (ticks < 40 or not commands):
                services["checkout"].serve(40, **BAD)
                services["cart"].serve(40, **HEALTHY)
                # One record per resource, keyed by it (partition_metrics_by_resource_attributes).
                await produce(
                    bootstrap,
                    topic,
                    [
                        (name.encode(), s.export().SerializeToString())
                        for name, s in services.items()
                    ],
                )
                ticks += 1
                commands = await read_for(bootstrap, settings.command_topic, 0.5)
        finally:
            for service in services.values():
                service.shutdown()
        commands = await read_until(bootstrap, settings.command_topic, bool, timeout_s=5)
        process.send_signal(signal.SIGTERM)
        assert await wait_exit(process) == 0
    assert commands, f"no command\n{log_tail(process)}"
    _check_commands(commands)

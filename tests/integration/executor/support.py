"""Helpers of the executor's integration tests: settings, signed commands, a running executor."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson

from guardian.actions.commands import build_command
from guardian.config.settings import Settings
from guardian.engine.decision import DeployInfo
from guardian.executor.service import Executor
from guardian.executor.settings import ExecutorSettings
from guardian.ports import free_port
from tests.support.fake_kube import FakeKube
from tests.support.kafka import unique

KEY = "executor-test-key"

TARGETS = """\
targets:
  - service: checkout
    environment: production
    region: us-east
    namespace: shop
    kind: Deployment
    name: checkout
  - service: cart
    environment: production
    namespace: shop
    kind: Rollout
    name: cart
  - service: basket
    environment: production
    namespace: shop
    kind: Rollout
    name: basket
"""


def executor_settings(
    settings: Settings, fake: FakeKube, tmp_path: Path, **overrides: Any
) -> ExecutorSettings:
    """Executor settings on the test's broker and topics, pointed at the fake API server."""
    targets = tmp_path / "targets.yaml"
    targets.write_text(TARGETS, encoding="utf-8")
    values: dict[str, Any] = {name: getattr(settings, name) for name in Settings.model_fields}
    values.update(
        targets_file=targets,
        kubeconfig=fake.write_kubeconfig(tmp_path / "kubeconfig"),
        executor_group_id=unique("executor"),
        executor_http=f"127.0.0.1:{free_port()}",
        applied_topic=f"{settings.state_topic}.applied",
        poll_interval_s=0.05,
        converge_timeout_s=10.0,
    )
    values.update(overrides)
    return ExecutorSettings(**values)


def command(
    *,
    deploy_id: str = "d-exec",
    service: str = "checkout",
    version: str = "2.4.1",
    previous: str | None = "2.4.0",
    strategy: str = "canary",
    key: str | None = KEY,
) -> dict[str, Any]:
    """A rollback command as the guardian writes it (signed with ``key``), issued now."""
    deploy = DeployInfo(
        deploy_id=deploy_id,
        service=service,
        environment="production",
        version=version,
        previous_version=previous,
        strategy=strategy,
        component="application",
        regions=("us-east",),
        started_at_ms=int(time.time() * 1000) - 60_000,
    )
    built = build_command(
        deploy,
        trigger="automatic",
        reason="error rate 8.3% over 5m > 5%",
        issued_at_ms=int(time.time() * 1000),
        rule="error-rate-critical",
        evidence={"metric": "error_rate", "observed": 0.083, "threshold": 0.05, "samples": 41},
        signing_key=key.encode() if key else None,
    )
    result: dict[str, Any] = orjson.loads(built.model_dump_json())
    return result


@asynccontextmanager
async def running(settings: ExecutorSettings) -> AsyncIterator[Executor]:
    """Run an executor until the block ends, then drain it and surface any crash."""
    executor = Executor(settings)
    task = asyncio.create_task(executor.run())
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not executor.ready:
            if task.done():
                task.result()
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("the executor never became ready")
            await asyncio.sleep(0.05)
        yield executor
    finally:
        executor.request_stop()
        await asyncio.wait_for(task, timeout=30)


def value(executor: Executor, name: str, **labels: str) -> float:
    """A metric sample of the executor (0 when absent)."""
    found = executor.metrics.registry.get_sample_value(name, labels or None)
    return found or 0.0

"""Closing the loop: a bad release → the guardian's command → the executor's patch → resolved.

Both ``guardian run`` and ``guardian execute`` run as installed commands in
processes of their own, on the test broker; the executor reaches the fake
Kubernetes API (served by this test) through a generated kubeconfig. The
test prints how long each step of the command's path took.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from guardian.config.settings import Settings
from guardian.ports import free_port
from tests.e2e.support import GUARDIAN, guardian_process, settings_env, wait_exit, wait_ready
from tests.support.events import deploy, traffic
from tests.support.fake_kube import FakeKube
from tests.support.kafka import produce_json, read_until
from tests.support.slack import FakeSlack
from tests.support.waiting import eventually

pytestmark = pytest.mark.kafka

KEY = "e2e-executor-key"
TARGETS = """\
targets:
  - service: checkout
    environment: production
    region: us-east
    context: prod-us-east
    namespace: shop
    kind: Deployment
    name: checkout
"""
SUBSCRIPTIONS = """\
subscriptions:
  - name: checkout-oncall
    match: {service: "checkout*"}
    slack: ["#checkout-oncall"]
"""


@contextmanager
def executor_process(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``guardian execute``; on exit make sure it is gone."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [GUARDIAN, "execute"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)


async def _first(
    bootstrap: str, topic: str, match: Callable[[dict[str, Any]], bool]
) -> tuple[dict[str, Any], float]:
    """The first record on ``topic`` that matches, and when it was seen (monotonic)."""
    seen = await read_until(bootstrap, topic, lambda records: any(map(match, records)), 90)
    found = next((record for record in seen if match(record)), None)
    assert found is not None, f"nothing on {topic} matched: {seen}"
    return found, time.monotonic()


async def test_a_bad_release_is_rolled_back_by_the_executor_and_the_incident_resolves(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Decision → signed command → Deployment patched → rolled_back → incident resolved."""
    slack = FakeSlack()
    await slack.start()
    subscriptions = tmp_path / "subscriptions.yaml"
    subscriptions.write_text(SUBSCRIPTIONS)
    settings = settings_factory(
        signing_key=KEY,
        subscriptions=subscriptions,
        slack_token=slack.token,
        slack_base_url=slack.base_url,
        notify_backoff_initial_s=0.1,
    )
    bootstrap = settings.bootstrap_servers
    assert bootstrap
    fake = FakeKube(converge_after_s=0.5)
    await fake.start()
    fake.add_workload("Deployment", "checkout")
    targets = tmp_path / "targets.yaml"
    targets.write_text(TARGETS)
    executor_port = free_port()
    executor_env = {
        **settings_env(settings),
        "GUARDIAN_TARGETS_FILE": str(targets),
        "GUARDIAN_KUBECONFIG": str(
            fake.write_kubeconfig(tmp_path / "kubeconfig", ("prod-us-east",))
        ),
        "GUARDIAN_EXECUTOR_HTTP": f"127.0.0.1:{executor_port}",
        "GUARDIAN_EXECUTOR_GROUP_ID": f"{settings.group_id}-executor",
        "GUARDIAN_APPLIED_TOPIC": f"{settings.state_topic}.applied",
        "GUARDIAN_POLL_INTERVAL_S": "0.1",
    }
    try:
        with (
            guardian_process(settings_env(settings), log_path=tmp_path / "g.log") as guardian,
            executor_process(executor_env, tmp_path / "x.log") as executor,
        ):
            await wait_ready(settings.http_port, guardian)
            await wait_ready(executor_port, executor)
            watch = {
                "command": asyncio.create_task(
                    _first(bootstrap, settings.command_topic, lambda r: r["deploy_id"] == "d-loop")
                ),
                "rolled_back": asyncio.create_task(
                    _first(bootstrap, settings.deploy_topic, lambda r: r["type"] == "rolled_back")
                ),
                "resolved": asyncio.create_task(
                    _first(
                        bootstrap,
                        settings.incident_topic or "",
                        lambda r: r["type"].split(".")[3] == "resolved",
                    )
                ),
            }
            released = time.monotonic()
            await produce_json(
                bootstrap, settings.deploy_topic, [deploy(deploy_id="d-loop", strategy="canary")]
            )
            await produce_json(
                bootstrap, settings.metric_topic, traffic(seconds=150, error_rate=0.08)
            )
            (command, commanded), (report, reported), (resolved, resolved_at) = [
                await watch[name] for name in ("command", "rolled_back", "resolved")
            ]
            await eventually(lambda: "rolled back" in str(slack.in_channel("#checkout-oncall")))
            noticed = time.monotonic()
            for process in (executor, guardian):
                process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.1)
            executor.send_signal(signal.SIGTERM)  # a copy (as `timeout` sends) still drains
            assert await wait_exit(executor) == 0
            assert await wait_exit(guardian) == 0
    finally:
        await fake.stop()
        await slack.stop()

    (patch,) = [p for p in fake.patches() if p.status == 200]
    assert command["signature"].startswith("hmac-sha256+jcs:")
    assert report["command_id"] == command["command_id"]
    assert (report["deploy_id"], report["version"], report["previous_version"]) == (
        "d-loop",
        "2.4.1",
        "2.4.0",
    )
    assert resolved["data"]["customData"]["status"] == "rolled_back"
    image = fake.get("Deployment", "checkout")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(":2.4.0")
    steps = [
        ("bad release produced → rollback command on the topic", released, commanded),
        ("command → Deployment patched (fake API)", commanded, patch.at),
        ("patched → rolled_back on the deploy topic (converged)", patch.at, reported),
        ("rolled_back → incident.resolved on the incident topic", reported, resolved_at),
        ("incident resolved → Slack resolution seen", resolved_at, noticed),
    ]
    print("\ncommand path, decision to resolution:")
    for label, start, end in steps:
        print(f"  {label}: {max(0.0, end - start) * 1000:.0f} ms")
    print(f"  total: {(noticed - released) * 1000:.0f} ms")
    log = (tmp_path / "x.log").read_text()
    assert "executor_command_done" in log
    assert KEY not in log


async def test_execute_with_an_unreachable_broker_exits_1(tmp_path: Path) -> None:
    """A broker that never answers ends the executor with exit 1 and a clear log line."""
    targets = tmp_path / "targets.yaml"
    targets.write_text(TARGETS)
    env = settings_env(Settings())
    env.update(
        GUARDIAN_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
        GUARDIAN_CONNECT_TIMEOUT_S="2",
        GUARDIAN_TARGETS_FILE=str(targets),
        GUARDIAN_KUBECONFIG=str(
            FakeKube(port=free_port()).write_kubeconfig(tmp_path / "kubeconfig", ("prod-us-east",))
        ),
        GUARDIAN_EXECUTOR_HTTP=f"127.0.0.1:{free_port()}",
    )
    with executor_process(env, tmp_path / "x.log") as process:
        assert await wait_exit(process, timeout_s=60) == 1
    log = (tmp_path / "x.log").read_text()
    assert "unreachable" in log
    assert "fatal_error" in log

"""``guardian execute`` on real brokers against the fake Kubernetes API (real lightkube client)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from pydantic import SecretStr

from guardian.config.settings import Settings
from guardian.wire.events import DeployEvent, decode_event
from tests.integration.executor.support import KEY, command, executor_settings, running, value
from tests.support.fake_kube import FakeKube
from tests.support.kafka import produce, produce_json, read_for, read_until
from tests.support.waiting import eventually

pytestmark = pytest.mark.kafka


@pytest.fixture
async def fake() -> AsyncIterator[FakeKube]:
    """A fake API server holding the checkout Deployment (2.4.0 → 2.4.1) and the cart Rollout."""
    async with FakeKube(converge_after_s=0.2) as server:
        server.add_workload("Deployment", "checkout")
        yield server


def _reports(deploy_id: str, count: int = 1) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda seen: sum(1 for e in seen if e.get("deploy_id") == deploy_id) >= count


def _template_versions(fake: FakeKube) -> list[str]:
    """The app.kubernetes.io/version of each pod template a successful patch sent."""
    return [
        op["value"]["metadata"]["labels"]["app.kubernetes.io/version"]
        for seen in fake.patches()
        if seen.status == 200 and isinstance(seen.body, list)
        for op in seen.body
        if op["path"] == "/spec/template"
    ]


async def test_a_signed_command_rolls_the_deployment_back_and_reports_rolled_back(
    settings_factory: Callable[..., Settings], fake: FakeKube, tmp_path: Path
) -> None:
    """The command's patch reaches the API server; a v1 rolled_back event and an audit follow."""
    settings = executor_settings(settings_factory(signing_key=SecretStr(KEY)), fake, tmp_path)
    async with running(settings) as executor:
        await produce_json(settings.bootstrap_servers or "", settings.command_topic, [command()])
        events = await read_until(
            settings.bootstrap_servers or "", settings.deploy_topic, _reports("d-exec")
        )
        await eventually(
            lambda: (
                value(
                    executor,
                    "guardian_executor_applied_total",
                    action="rollback",
                    kind="Deployment",
                )
                == 1
            )
        )
        converge = value(executor, "guardian_executor_converge_seconds_count", kind="Deployment")
    (event,) = events
    decoded = decode_event(orjson.dumps(event))
    assert isinstance(decoded, DeployEvent)
    assert decoded.type == "rolled_back"
    assert (decoded.version, decoded.previous_version) == ("2.4.1", "2.4.0")
    assert _template_versions(fake) == ["2.4.0"]
    patch = fake.patches()[0]
    assert patch.content_type == "application/json-patch+json"
    assert "pod-template-hash" not in str(patch.body)
    assert fake.get("Deployment", "checkout")["spec"]["template"]["spec"]["containers"][0][
        "image"
    ].endswith(":2.4.0")
    assert converge == 1
    audits = await read_until(settings.bootstrap_servers or "", settings.audit_topic, bool)
    assert audits[0]["event"] == "executor_rolled_back"
    assert audits[0]["command_id"] == event["command_id"]


async def test_redelivery_and_restart_apply_nothing_twice(
    settings_factory: Callable[..., Settings], fake: FakeKube, tmp_path: Path
) -> None:
    """The same command twice, then a new executor re-reading everything: one patch, one report."""
    settings = executor_settings(settings_factory(signing_key=SecretStr(KEY)), fake, tmp_path)
    bootstrap = settings.bootstrap_servers or ""
    once = command()
    await produce_json(bootstrap, settings.command_topic, [once, once])
    async with running(settings) as executor:
        await read_until(bootstrap, settings.deploy_topic, _reports("d-exec"))
        await eventually(lambda: value(executor, "guardian_executor_duplicates_total") == 1)
    # A restart in a new group re-reads both copies from the start: the ledger knows them.
    again = settings.model_copy(update={"executor_group_id": settings.executor_group_id + "-2"})
    async with running(again) as restarted:
        await eventually(lambda: value(restarted, "guardian_executor_duplicates_total") == 2)
    assert len([p for p in fake.patches() if p.status == 200]) == 1
    reports = await read_for(bootstrap, settings.deploy_topic, 1.0)
    assert [r["type"] for r in reports] == ["rolled_back"]


async def test_a_precondition_mismatch_patches_nothing_and_reports_failed(
    settings_factory: Callable[..., Settings], fake: FakeKube, tmp_path: Path
) -> None:
    """The target runs 2.4.0, not the command's from_version 2.4.2: no patch, a failed event."""
    settings = executor_settings(settings_factory(signing_key=SecretStr(KEY)), fake, tmp_path)
    bootstrap = settings.bootstrap_servers or ""
    async with running(settings) as executor:
        await produce_json(
            bootstrap, settings.command_topic, [command(version="2.4.2", previous="2.4.1")]
        )
        (event,) = await read_until(bootstrap, settings.deploy_topic, _reports("d-exec"))
        await eventually(
            lambda: value(executor, "guardian_executor_failed_total", reason="precondition") == 1
        )
    assert event["type"] == "failed"
    assert "not from_version 2.4.2" in event["detail"]
    assert fake.patches() == []


async def test_unsigned_and_forged_commands_are_refused_and_audited(
    settings_factory: Callable[..., Settings], fake: FakeKube, tmp_path: Path
) -> None:
    """Unsigned, forged and garbage commands patch nothing; the signed one after them applies."""
    settings = executor_settings(settings_factory(signing_key=SecretStr(KEY)), fake, tmp_path)
    bootstrap = settings.bootstrap_servers or ""
    forged = command(deploy_id="d-forged", key="not-the-key")
    tampered = command(deploy_id="d-tampered")
    tampered["to_version"] = "1.0.0"
    records = [
        (b"checkout", orjson.dumps(command(deploy_id="d-unsigned", key=None))),
        (b"checkout", orjson.dumps(forged)),
        (b"checkout", orjson.dumps(tampered)),
        (b"checkout", b"\x00 not json"),
        (b"checkout", orjson.dumps(command(deploy_id="d-good"))),
    ]
    async with running(settings) as executor:
        await produce(bootstrap, settings.command_topic, records)
        events = await read_until(bootstrap, settings.deploy_topic, _reports("d-good"))
        await eventually(
            lambda: value(executor, "guardian_executor_refused_total", reason="forged") == 2
        )
        assert value(executor, "guardian_executor_refused_total", reason="unsigned") == 1
        assert value(executor, "guardian_executor_refused_total", reason="invalid") == 1
    assert [e["deploy_id"] for e in events] == ["d-good"]
    assert _template_versions(fake) == ["2.4.0"]
    audits = await read_until(bootstrap, settings.audit_topic, lambda seen: len(seen) >= 5)
    refused = [a for a in audits if a["event"] == "executor_refused"]
    assert sorted(a["details"]["reason"] for a in refused) == [
        "forged",
        "forged",
        "invalid",
        "unsigned",
    ]


async def test_a_conflict_is_retried_on_fresh_state(
    settings_factory: Callable[..., Settings], fake: FakeKube, tmp_path: Path
) -> None:
    """Two writers in between answer 409; the executor re-reads and the third patch lands."""
    settings = executor_settings(settings_factory(signing_key=SecretStr(KEY)), fake, tmp_path)
    bootstrap = settings.bootstrap_servers or ""
    fake.interfere(2)
    async with running(settings) as executor:
        await produce_json(bootstrap, settings.command_topic, [command()])
        (event,) = await read_until(bootstrap, settings.deploy_topic, _reports("d-exec"))
        await eventually(lambda: value(executor, "guardian_executor_conflicts_total") == 2)
    assert event["type"] == "rolled_back"
    statuses = [p.status for p in fake.patches()]
    assert statuses == [409, 409, 200]
    guards = [p.body[0]["value"] for p in fake.patches()]
    assert len(set(guards)) == 3, "each retry carries the resourceVersion it read afresh"


async def test_dry_run_patches_and_reports_nothing(
    settings_factory: Callable[..., Settings], fake: FakeKube, tmp_path: Path
) -> None:
    """A dry run plans the rollback but sends no patch, report, audit or ledger record."""
    settings = executor_settings(
        settings_factory(signing_key=SecretStr(KEY)), fake, tmp_path, dry_run=True
    )
    bootstrap = settings.bootstrap_servers or ""
    async with running(settings) as executor:
        await produce_json(bootstrap, settings.command_topic, [command()])
        await eventually(
            lambda: (
                value(executor, "guardian_executor_commands_received_total", kind="rollback") == 1
            )
        )
    assert fake.patches() == []
    assert await read_for(bootstrap, settings.deploy_topic, 1.0) == []
    assert await read_for(bootstrap, settings.applied_topic, 0.5) == []


async def test_a_crash_between_patch_and_record_is_resumed_without_a_second_patch(
    settings_factory: Callable[..., Settings], fake: FakeKube, tmp_path: Path
) -> None:
    """Ledger ``applying``, target already on to_version: rolled_back, no second patch."""
    settings = executor_settings(settings_factory(signing_key=SecretStr(KEY)), fake, tmp_path)
    bootstrap = settings.bootstrap_servers or ""
    fake.objects.clear()
    fake.replicasets.clear()
    fake.add_workload("Deployment", "checkout", versions=("2.4.1", "2.4.0"))
    pending = command()
    await produce(
        bootstrap,
        settings.applied_topic,
        [(pending["command_id"].encode(), orjson.dumps({"state": "applying"}))],
    )
    await produce_json(bootstrap, settings.command_topic, [pending])
    async with running(settings):
        (event,) = await read_until(bootstrap, settings.deploy_topic, _reports("d-exec"))
    assert event["type"] == "rolled_back"
    assert "after a restart" in event["detail"]
    assert fake.patches() == []


async def test_pause_abort_expired_and_unknown_targets(
    settings_factory: Callable[..., Settings], fake: FakeKube, tmp_path: Path
) -> None:
    """A pause sets spec.paused; a GitOps canary is aborted only; stale and unknown ones fail."""
    fake.add_workload(
        "Rollout", "cart", canary=True, labels={"argocd.argoproj.io/instance": "shop"}
    )
    fake.add_workload("Rollout", "basket", canary=True)
    settings = executor_settings(settings_factory(), fake, tmp_path)
    bootstrap = settings.bootstrap_servers or ""
    pause = {
        "kind": "pause_command",
        "version": 1,
        "command_id": "ps-1",
        "deploy_id": "d-pause",
        "service": "checkout",
        "environment": "production",
        "regions": ["us-east"],
        "rule": "canary-latency",
        "reason": "latency",
        "evidence": {},
        "issued_at": command()["issued_at"],
    }
    expired = command(deploy_id="d-old", key=None)
    expired["issued_at"] = "2026-11-24T00:00:00.000Z"
    records = [
        pause,
        command(deploy_id="d-cart", service="cart", key=None),
        command(deploy_id="d-basket", service="basket", key=None),
        expired,
        command(deploy_id="d-nowhere", service="search", key=None),
        {"kind": "audit", "service": "checkout"},
    ]
    async with running(settings) as executor:
        await produce_json(bootstrap, settings.command_topic, records)
        events = await read_until(
            bootstrap,
            settings.deploy_topic,
            lambda seen: {"d-cart", "d-basket", "d-nowhere"} <= {e["deploy_id"] for e in seen},
        )
        await eventually(
            lambda: (
                value(
                    executor, "guardian_executor_applied_total", action="pause", kind="Deployment"
                )
                == 1
            )
        )
        assert executor.http_port is not None
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{executor.http_port}"
            async with http.get(f"{base}/metrics") as response:
                metrics = await response.text()
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 200
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
    by_deploy = {e["deploy_id"]: e for e in events}
    assert set(by_deploy) == {"d-cart", "d-basket", "d-nowhere"}, "a pause reports none"
    assert by_deploy["d-basket"]["type"] == "rolled_back"
    basket = [p for p in fake.patches() if "rollouts/basket" in p.path]
    assert [(p.path.rsplit("/", 1)[-1], p.content_type) for p in basket] == [
        ("status", "application/merge-patch+json"),
        ("basket", "application/json-patch+json"),
    ], "abort, then undo to the stable template"
    stable = fake.get("Rollout", "basket")["spec"]["template"]["metadata"]["labels"]
    assert stable["app.kubernetes.io/version"] == "2.4.0"
    assert by_deploy["d-cart"]["type"] == "rolled_back"
    assert "aborted" in by_deploy["d-cart"]["detail"]
    assert by_deploy["d-nowhere"]["type"] == "failed"
    assert "no target in targets.yaml" in by_deploy["d-nowhere"]["detail"]
    assert fake.get("Deployment", "checkout")["spec"]["paused"] is True
    cart_patches = [p for p in fake.patches() if "rollouts/cart" in p.path]
    assert [p.path.rsplit("/", 1)[-1] for p in cart_patches] == ["status"], "abort only"
    assert 'guardian_executor_refused_total{reason="expired"} 1.0' in metrics
    assert 'guardian_executor_commands_received_total{kind="other"} 1.0' in metrics
    audits = await read_until(bootstrap, settings.audit_topic, lambda seen: len(seen) >= 4)
    cart = next(a for a in audits if a.get("deploy_id") == "d-cart")
    assert cart["details"]["targets"][0]["gitops"] == "argocd.argoproj.io/instance=shop"
    assert "self-heal" in cart["details"]["targets"][0]["notes"][0]
    assert any(a["event"] == "executor_paused" for a in audits)


async def test_a_drain_during_a_rollout_leaves_it_to_the_next_start(
    settings_factory: Callable[..., Settings], fake: FakeKube, tmp_path: Path
) -> None:
    """SIGTERM while waiting: nothing reported or committed; the restart reports, unpatched."""
    fake.converge_after_s = 3600  # the rollout does not finish while the first executor waits
    settings = executor_settings(settings_factory(signing_key=SecretStr(KEY)), fake, tmp_path)
    bootstrap = settings.bootstrap_servers or ""
    await produce_json(bootstrap, settings.command_topic, [command()])
    async with running(settings):
        await eventually(lambda: any(p.status == 200 for p in fake.patches()))
    assert await read_for(bootstrap, settings.deploy_topic, 0.5) == []
    fake.finish("Deployment", "checkout")
    async with running(settings):  # the same group: the command was not committed
        (event,) = await read_until(bootstrap, settings.deploy_topic, _reports("d-exec"))
    assert event["type"] == "rolled_back"
    assert "after a restart" in event["detail"]
    assert len([p for p in fake.patches() if p.status == 200]) == 1

"""The lightkube adapter against the fake API server: kubeconfig, contexts and wrapped errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from guardian.errors import ConfigError
from guardian.executor.kube import KubeError, LightkubeApi, load_kubeconfig
from guardian.executor.plan import Patch
from guardian.executor.targets import Target
from tests.support.fake_kube import FakeKube


def _target(kind: str = "Deployment", name: str = "checkout", context: str | None = None) -> Target:
    return Target.model_validate(
        {
            "service": name,
            "environment": "production",
            "namespace": "shop",
            "kind": kind,
            "name": name,
            "context": context,
        }
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeKube]:
    """The fake API server with one Deployment."""
    async with FakeKube() as server:
        server.add_workload("Deployment", "checkout")
        yield server


async def test_contexts_reach_the_server_they_name(fake: FakeKube, tmp_path: Path) -> None:
    """Each context gets its own client; an unknown context is a ConfigError up front."""
    config = load_kubeconfig(fake.write_kubeconfig(tmp_path / "kc", ("a", "b")))
    async with LightkubeApi(config) as api:
        api.check_contexts({None, "a", "b"})
        with pytest.raises(ConfigError, match="Context 'c' not found"):
            api.check_contexts({"c"})
        for context in ("a", "b"):
            obj = await api.get(_target(context=context))
            assert obj["metadata"]["name"] == "checkout"
        owned = await api.replicasets(_target(), obj)
        assert len(owned) == 2
    await api.close()  # safe twice


async def test_api_errors_are_wrapped_with_their_status(fake: FakeKube, tmp_path: Path) -> None:
    """404 is not retriable, 409 is a conflict, an unreachable server is retriable."""
    config = load_kubeconfig(fake.write_kubeconfig(tmp_path / "kc"))
    async with LightkubeApi(config, timeout_s=2) as api:
        with pytest.raises(KubeError) as missing:
            await api.get(_target("Rollout", "nowhere"))
        assert (missing.value.status, missing.value.retriable) == (404, False)
        stale = Patch(
            "pause", "merge", {"metadata": {"resourceVersion": "1"}, "spec": {"paused": True}}
        )
        with pytest.raises(KubeError) as conflict:
            await api.patch(_target(), stale)
        assert conflict.value.conflict
    await fake.stop()
    async with LightkubeApi(config, timeout_s=1) as api:
        with pytest.raises(KubeError) as down:
            await api.get(_target())
        assert down.value.status is None
        assert down.value.retriable
        with pytest.raises(KubeError):
            await api.replicasets(_target(), {"spec": {}})
        with pytest.raises(KubeError):
            await api.patch(_target(), stale)


def test_an_unreadable_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    """A missing or broken kubeconfig stops the executor with exit code 2."""
    with pytest.raises(ConfigError, match="cannot load the kubeconfig"):
        load_kubeconfig(tmp_path / "missing")
    broken = tmp_path / "broken"
    broken.write_text("clusters: 7\n")
    with pytest.raises(ConfigError):
        load_kubeconfig(broken)

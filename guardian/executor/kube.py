"""The Kubernetes adapter: the only module that imports lightkube.

``KubeApi`` is the boundary the rest of the executor sees: read a target's
workload, list its ReplicaSets, send a ``Patch``, all as plain dicts. The
lightkube implementation keeps one ``AsyncClient`` per kubeconfig context
(targets may live in several clusters), built on first use; Argo Rollouts
are a generic namespaced resource (``argoproj.io/v1alpha1 rollouts``) with
its ``status`` subresource.

Errors are wrapped here as ``KubeError``: ``status`` is the HTTP status when
the API server answered (409 is a conflict, re-read and retry), and
``retriable`` is true for 5xx, 429 and connection failures. A kubeconfig that
cannot be read, or a context it does not name, is a ``ConfigError``.

Why lightkube: it is async, typed (mypy sees its models), small (httpx2 is
its only transport), reads kubeconfig files and in-cluster service accounts
alike, sends all three patch content types, and handles CRDs and their
subresources without generated code. kubernetes-asyncio is a generated
client with a much larger surface for the five calls used here; kr8s hides
the patch content types that the conflict handling depends on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import httpx2
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core.exceptions import ConfigError as LightkubeConfigError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.types import PatchType

from guardian.errors import ConfigError, GuardianError
from guardian.executor.plan import Patch
from guardian.executor.targets import Target

Rollout = create_namespaced_resource("argoproj.io", "v1alpha1", "Rollout", "rollouts")
FIELD_MANAGER = "guardian-executor"
_PATCH_TYPES = {"json": PatchType.JSON, "merge": PatchType.MERGE, "strategic": PatchType.STRATEGIC}
HTTP_CONFLICT = 409


class KubeError(GuardianError):
    """A Kubernetes API call failed; ``status`` is the HTTP status when there was an answer."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        retriable = status is None or status == 429 or status >= 500
        super().__init__(message, retriable=retriable)
        self.status = status

    @property
    def conflict(self) -> bool:
        """True for 409 Conflict: the object changed since it was read."""
        return self.status == HTTP_CONFLICT


class KubeApi(Protocol):
    """What the executor asks of a cluster."""

    async def get(self, target: Target) -> dict[str, Any]:
        """The target's workload object."""

    async def replicasets(self, target: Target, owner: dict[str, Any]) -> list[dict[str, Any]]:
        """The ReplicaSets matching the workload's selector in its namespace."""

    async def patch(self, target: Target, patch: Patch) -> dict[str, Any]:
        """Send one patch; the object as the API server returned it."""


def load_kubeconfig(path: Path | None) -> KubeConfig:
    """The kubeconfig: ``path``, else in-cluster, ``$KUBECONFIG``, ``~/.kube/config``."""
    try:
        return KubeConfig.from_file(path) if path is not None else KubeConfig.from_env()
    except Exception as exc:  # noqa: BLE001 - lightkube lets its YAML, msgspec and key errors out
        where = str(path) if path else "in-cluster, $KUBECONFIG or ~/.kube/config"
        raise ConfigError(f"cannot load the kubeconfig ({where}): {exc}") from None


class LightkubeApi:
    """``KubeApi`` over lightkube: one client per kubeconfig context."""

    def __init__(self, config: KubeConfig, *, timeout_s: float = 10.0) -> None:
        self._config = config
        self._timeout = httpx2.Timeout(timeout_s)
        self._clients: dict[str | None, AsyncClient] = {}

    def check_contexts(self, contexts: set[str | None]) -> None:
        """ConfigError when a target names a context the kubeconfig lacks."""
        for context in contexts:
            self._single(context)

    def _single(self, context: str | None) -> SingleConfig:
        try:
            single = self._config.get(context)
        except LightkubeConfigError as exc:
            raise ConfigError(f"kubeconfig: {exc}") from None
        assert single is not None  # noqa: S101 - get() raises rather than return None without a default
        return single

    def _client(self, context: str | None) -> AsyncClient:
        client = self._clients.get(context)
        if client is None:
            client = AsyncClient(
                self._single(context),
                timeout=self._timeout,
                field_manager=FIELD_MANAGER,
                trust_env=False,
            )
            self._clients[context] = client
        return client

    async def get(self, target: Target) -> dict[str, Any]:
        """The target's workload object."""
        resource = Deployment if target.kind == "Deployment" else Rollout
        try:
            obj = await self._client(target.context).get(
                resource, target.name, namespace=target.namespace
            )
        except (ApiError, httpx2.HTTPError) as exc:
            raise _wrap(exc, f"get {target.ref}") from exc
        return _as_dict(obj)

    async def replicasets(self, target: Target, owner: dict[str, Any]) -> list[dict[str, Any]]:
        """The ReplicaSets matching the workload's selector in its namespace."""
        selector = ((owner.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        try:
            return [
                _as_dict(rs)
                async for rs in self._client(target.context).list(
                    ReplicaSet, namespace=target.namespace, labels=selector
                )
            ]
        except (ApiError, httpx2.HTTPError) as exc:
            raise _wrap(exc, f"list replicasets of {target.ref}") from exc

    async def patch(self, target: Target, patch: Patch) -> dict[str, Any]:
        """Send one patch; the object as the API server returned it."""
        base = Deployment if target.kind == "Deployment" else Rollout
        resource: Any = Rollout.Status if patch.subresource == "status" else base
        try:
            obj = await self._client(target.context).patch(
                resource,
                target.name,
                patch.body,
                namespace=target.namespace,
                patch_type=_PATCH_TYPES[patch.patch_type],
            )
        except (ApiError, httpx2.HTTPError) as exc:
            raise _wrap(exc, f"patch {target.ref} ({patch.what})") from exc
        return _as_dict(obj)

    async def close(self) -> None:
        """Close every client; safe to call twice."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.close()

    async def __aenter__(self) -> LightkubeApi:
        # httpx2 logs every request at INFO: one line per poll would drown the executor's own.
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _as_dict(obj: Any) -> dict[str, Any]:
    result: dict[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return result


def _wrap(exc: Exception, doing: str) -> KubeError:
    if isinstance(exc, ApiError):
        code = exc.status.code or exc.response.status_code
        return KubeError(
            f"{doing}: {code} {exc.status.reason or ''} {exc.status.message or ''}".strip(),
            status=code,
        )
    if isinstance(exc, httpx2.HTTPStatusError):  # an answer that is not a Status object
        code = exc.response.status_code
        return KubeError(f"{doing}: {code} {exc.response.reason_phrase}", status=code)
    return KubeError(f"{doing}: {type(exc).__name__}: {exc}")

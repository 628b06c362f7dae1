"""A fake Kubernetes API server (aiohttp) with the subset ``guardian execute`` uses.

Served on a local port and reached by the real lightkube client through a
generated kubeconfig (``write_kubeconfig``). It implements:

- GET and PATCH of ``apps/v1`` Deployments and ``argoproj.io/v1alpha1``
  Rollouts, PATCH of a Rollout's ``status`` subresource, LIST of ReplicaSets
  by ``labelSelector``;
- the three patch content types: JSON patch (add/replace/remove/test), merge
  patch, and strategic merge patch (as a merge patch: the subset sent has no
  keyed lists);
- ``resourceVersion``: bumped by every write, and a patch that carries a stale
  one is answered 409 Conflict with a ``Status`` body, as the API server does;
- a controller, in spirit: a new pod template gets (or reuses) a ReplicaSet
  with its hash and the next revision, and after ``converge_after_s`` the
  status says the rollout finished (or, with ``deadline_exceeded``, that it
  hit ``ProgressDeadlineExceeded``); an abort marks a Rollout aborted.

Tests inject a concurrent writer with ``interfere(n)``: the next ``n``
patches find the object changed since it was read (409), as when a
controller or a person wrote in between. Every request is in ``requests``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from guardian.ports import free_port

APPS = "/apis/apps/v1/namespaces/{ns}"
ARGO = "/apis/argoproj.io/v1alpha1/namespaces/{ns}"


@dataclass
class Seen:
    """One request the fake answered."""

    method: str
    path: str
    content_type: str
    body: Any
    status: int
    at: float = field(default_factory=time.monotonic)  # when it was answered (monotonic)


@dataclass
class FakeKube:
    """The fake API server's state and its HTTP face."""

    converge_after_s: float = 0.2
    deadline_exceeded: bool = False
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    replicasets: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    _rv: int = 100
    _interfere: int = 0
    _runner: web.AppRunner | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    port: int = 0

    # ------------------------------------------------------------------ setup
    def interfere(self, times: int = 1) -> None:
        """The next ``times`` patches meet an object someone else changed: 409 Conflict."""
        self._interfere = times

    def patches(self) -> list[Seen]:
        """The PATCH requests answered so far (any status)."""
        return [r for r in self.requests if r.method == "PATCH"]

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def add_workload(
        self,
        kind: str,
        name: str,
        *,
        namespace: str = "shop",
        versions: tuple[str, ...] = ("2.4.0", "2.4.1"),
        replicas: int = 2,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        canary: bool = False,
    ) -> dict[str, Any]:
        """A Deployment or Rollout running ``versions[-1]``, one ReplicaSet per version.

        A Rollout with ``canary`` is mid-update: ``versions[-2]`` is stable, the
        last one the canary; otherwise the last one is stable too.
        """
        plural = "deployments" if kind == "Deployment" else "rollouts"
        uid = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:16]
        selector = {"app": name}
        obj: dict[str, Any] = {
            "apiVersion": "apps/v1" if kind == "Deployment" else "argoproj.io/v1alpha1",
            "kind": kind,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": uid,
                "generation": len(versions),
                "resourceVersion": self._next_rv(),
                "labels": labels or {},
                "annotations": annotations or {},
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": selector},
                "template": _template(name, versions[-1]),
            },
            "status": {},
        }
        self.objects[(plural, namespace, name)] = obj
        for revision, version in enumerate(versions, start=1):
            self._replicaset_for(obj, _template(name, version), revision)
        current = self._hash(obj["spec"]["template"])
        if kind == "Deployment":
            obj["status"] = _deployment_done(obj)
        else:
            stable = self._hash(_template(name, versions[-2])) if canary else current
            obj["status"] = {
                "observedGeneration": str(obj["metadata"]["generation"]),
                "currentPodHash": current,
                "stableRS": stable,
                "phase": "Paused" if canary else "Healthy",
                "replicas": replicas,
            }
        return obj

    def get(self, kind: str, name: str, namespace: str = "shop") -> dict[str, Any]:
        """The object as stored."""
        plural = "deployments" if kind == "Deployment" else "rollouts"
        return self.objects[(plural, namespace, name)]

    def touch(self, kind: str, name: str, namespace: str = "shop") -> None:
        """Someone else writes the object (an annotation): its resourceVersion moves on."""
        obj = self.get(kind, name, namespace)
        obj["metadata"].setdefault("annotations", {})["touched"] = self._next_rv()
        obj["metadata"]["resourceVersion"] = self._next_rv()

    @staticmethod
    def _hash(template: dict[str, Any]) -> str:
        clean = copy.deepcopy(template)
        labels = clean.get("metadata", {}).get("labels", {})
        labels.pop("pod-template-hash", None)
        labels.pop("rollouts-pod-template-hash", None)
        return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()[:10]

    def _replicaset_for(
        self, owner: dict[str, Any], template: dict[str, Any], revision: int | None = None
    ) -> dict[str, Any]:
        pod_hash = self._hash(template)
        rollout = owner["kind"] == "Rollout"
        hash_label = "rollouts-pod-template-hash" if rollout else "pod-template-hash"
        annotation = (
            "rollout.argoproj.io/revision" if rollout else "deployment.kubernetes.io/revision"
        )
        owned = [
            rs
            for rs in self.replicasets
            if rs["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]
        ]
        top = max((int(rs["metadata"]["annotations"][annotation]) for rs in owned), default=0)
        number = revision if revision is not None else top + 1
        for rs in owned:
            if rs["metadata"]["labels"][hash_label] == pod_hash:
                rs["metadata"]["annotations"][annotation] = str(number)
                return rs
        stamped = copy.deepcopy(template)
        stamped["metadata"]["labels"][hash_label] = pod_hash
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{owner['metadata']['name']}-{pod_hash}",
                "namespace": owner["metadata"]["namespace"],
                "resourceVersion": self._next_rv(),
                "labels": {**stamped["metadata"]["labels"]},
                "annotations": {annotation: str(number)},
                "ownerReferences": [
                    {
                        "apiVersion": owner["apiVersion"],
                        "kind": owner["kind"],
                        "name": owner["metadata"]["name"],
                        "uid": owner["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {**stamped["metadata"]["labels"]}},
                "template": stamped,
            },
        }
        self.replicasets.append(rs)
        return rs

    # ------------------------------------------------------------------ HTTP
    async def start(self) -> str:
        """Serve on a free local port; the base URL."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._route)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self.port = free_port()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._runner = runner
        return self.url

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        """Stop serving and the controller; safe to call twice."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeKube:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    def write_kubeconfig(self, path: Path, contexts: tuple[str, ...] = ("fake",)) -> Path:
        """A kubeconfig whose contexts all point at this server (the first is current)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [
                {
                    "name": name,
                    "context": {"cluster": "fake", "user": "fake", "namespace": "default"},
                }
                for name in contexts
            ],
            "current-context": contexts[0],
        }
        path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
        return path

    async def _route(self, request: web.Request) -> web.Response:
        body: Any = None
        if request.can_read_body:
            body = json.loads(await request.read())
        response = self._answer(request, body)
        self.requests.append(
            Seen(request.method, request.path, request.content_type, body, response.status)
        )
        return response

    def _answer(self, request: web.Request, body: Any) -> web.Response:  # noqa: PLR0911 - one answer per route
        parts = request.path.strip("/").split("/")
        # /apis/<group>/<version>/namespaces/<ns>/<plural>[/<name>[/status]]
        if len(parts) < 6 or parts[0] != "apis" or parts[3] != "namespaces":
            return _status(404, "NotFound", f"no route {request.path}")
        namespace, plural = parts[4], parts[5]
        if plural == "replicasets" and len(parts) == 6 and request.method == "GET":
            return self._list_replicasets(namespace, request.query.get("labelSelector", ""))
        if plural not in ("deployments", "rollouts") or len(parts) not in (7, 8):
            return _status(404, "NotFound", f"no route {request.path}")
        obj = self.objects.get((plural, namespace, parts[6]))
        if obj is None:
            return _status(404, "NotFound", f'{plural} "{parts[6]}" not found')
        subresource = parts[7] if len(parts) == 8 else ""
        if request.method == "GET" and not subresource:
            return _json(obj)
        if request.method == "PATCH":
            return self._patch(obj, plural, request.content_type, body, subresource)
        return _status(405, "MethodNotAllowed", request.method)

    def _list_replicasets(self, namespace: str, selector: str) -> web.Response:
        wanted = dict(item.split("=", 1) for item in selector.split(",") if item)
        items = [
            rs
            for rs in self.replicasets
            if rs["metadata"]["namespace"] == namespace
            and wanted.items() <= rs["metadata"]["labels"].items()
        ]
        return _json(
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSetList",
                "metadata": {"resourceVersion": str(self._rv)},
                "items": items,
            }
        )

    def _patch(
        self, obj: dict[str, Any], plural: str, content_type: str, body: Any, subresource: str
    ) -> web.Response:
        if self._interfere > 0:
            self._interfere -= 1
            self.touch(obj["kind"], obj["metadata"]["name"], obj["metadata"]["namespace"])
        try:
            if content_type == "application/json-patch+json":
                patched = json_patch(obj, body)
            elif content_type in (
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
            ):
                patched = merge_patch(obj, body)
            else:
                return _status(415, "UnsupportedMediaType", content_type)
        except (KeyError, IndexError, ValueError) as exc:
            return _status(422, "Invalid", f"the patch cannot be applied: {exc}")
        sent = str(patched["metadata"].get("resourceVersion", ""))
        if sent and sent != obj["metadata"]["resourceVersion"]:
            name = obj["metadata"]["name"]
            return _status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {plural} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        if subresource == "status":
            obj["status"] = patched.get("status", {})
            self._after_status(obj)
        else:
            spec_changed = patched["spec"] != obj["spec"]
            template_changed = patched["spec"].get("template") != obj["spec"].get("template")
            obj["metadata"] = patched["metadata"]
            if spec_changed:
                obj["spec"] = patched["spec"]
                obj["metadata"]["generation"] = int(obj["metadata"]["generation"]) + 1
                self._after_spec(obj, template_changed=template_changed)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        return _json(obj)

    def _after_spec(self, obj: dict[str, Any], *, template_changed: bool) -> None:
        """What the controller does with a new spec: a ReplicaSet now, the status later."""
        if not template_changed:  # e.g. spec.paused: no new revision
            self._later(obj)
            return
        rs = self._replicaset_for(obj, obj["spec"]["template"])
        if obj["kind"] == "Rollout":
            obj["status"]["currentPodHash"] = rs["metadata"]["labels"]["rollouts-pod-template-hash"]
            obj["status"]["phase"] = "Progressing"
        self._later(obj)

    def _after_status(self, obj: dict[str, Any]) -> None:
        if obj["status"].get("abort"):
            obj["status"]["phase"] = "Degraded"
            obj["status"]["message"] = "RolloutAborted: Rollout aborted update"
            obj["status"]["abortedAt"] = "2026-12-02T00:00:00Z"

    def _later(self, obj: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._converge(obj))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _converge(self, obj: dict[str, Any]) -> None:
        await asyncio.sleep(self.converge_after_s)
        self.finish(obj["kind"], obj["metadata"]["name"], obj["metadata"]["namespace"])

    def finish(self, kind: str, name: str, namespace: str = "shop") -> None:
        """The controller finishes the object's rollout now (as after ``converge_after_s``)."""
        obj = self.get(kind, name, namespace)
        generation = obj["metadata"]["generation"]
        if obj["kind"] == "Deployment":
            if self.deadline_exceeded:
                obj["status"] = {
                    "observedGeneration": generation,
                    "replicas": obj["spec"]["replicas"] * 2,
                    "updatedReplicas": 0,
                    "conditions": [
                        {
                            "type": "Progressing",
                            "status": "False",
                            "reason": "ProgressDeadlineExceeded",
                            "message": "ReplicaSet has timed out progressing.",
                        }
                    ],
                }
            else:
                obj["status"] = _deployment_done(obj)
        else:
            status = obj["status"]
            status["observedGeneration"] = str(generation)
            status["stableRS"] = status["currentPodHash"]
            status["phase"] = "Healthy"
            for key in ("abort", "abortedAt", "message"):
                status.pop(key, None)
        obj["metadata"]["resourceVersion"] = self._next_rv()


def _template(app: str, version: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app, "app.kubernetes.io/version": version}},
        "spec": {
            "containers": [
                {"name": "app", "image": f"registry.example.com/{app}:{version}"},
                {"name": "proxy", "image": "envoyproxy/envoy:v1.31.0"},
            ]
        },
    }


def _deployment_done(obj: dict[str, Any]) -> dict[str, Any]:
    replicas = obj["spec"]["replicas"]
    return {
        "observedGeneration": obj["metadata"]["generation"],
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    }


def _json(body: Any, status: int = 200) -> web.Response:
    # Exactly "application/json", as the API server writes it (no charset parameter).
    return web.Response(
        body=json.dumps(body).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def _status(code: int, reason: str, message: str) -> web.Response:
    return _json(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        },
        status=code,
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (a new value; the target is left alone)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902 JSON patch: add, replace, remove and test (a new value)."""
    result = copy.deepcopy(target)
    for operation in operations:
        path = [p.replace("~1", "/").replace("~0", "~") for p in operation["path"].split("/")[1:]]
        parent = result
        for part in path[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = path[-1]
        op = operation["op"]
        if op == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent[last]
            if current != operation["value"]:
                raise ValueError(f"test failed at {operation['path']}")
        elif op == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        elif op in ("add", "replace"):
            if op == "replace" and not isinstance(parent, list) and last not in parent:
                raise KeyError(f"replace of a missing member {operation['path']}")
            if isinstance(parent, list):
                parent[int(last)] = copy.deepcopy(operation["value"])
            else:
                parent[last] = copy.deepcopy(operation["value"])
        else:
            raise ValueError(f"unsupported op {op}")
    return result

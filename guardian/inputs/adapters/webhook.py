"""``POST /v1/events``: deploy and check events from CI systems, Argo CD and scripts.

The body is one event as JSON: a v1 deploy or check event, or a CDEvent
(bare, CloudEvents structured mode, or HTTP binary mode with ``ce-``
headers), decoded exactly as the daemon decodes ``deploy.events``. It is
written to the deploy topic as a v1 event keyed by its service, so the
replica that owns the service judges it, and answered:

- 202 once the broker acknowledged it (``{"accepted": ..., "deploy_id": ...}``);
- 400 (RFC 9457 problem, ``errors: [{"field", "message"}]`` with the field
  path) for anything that is not such an event: bad JSON, a wrong field, a
  metric event, a CloudEvent of another type, a timestamp too far ahead;
- 401 without a token the tokens file knows, 403 without the role
  ``deployer``, as the manual rollback API; 413 above the record size limit;
- 503 (``Retry-After``) while Kafka is away or slow: nothing was written,
  send again (the event's deploy id makes a resend harmless).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web

from guardian.api.problems import ProblemError, problem_response
from guardian.errors import DecodeError, SinkError
from guardian.inputs.adapters.auth import require_role
from guardian.inputs.adapters.body import read_body
from guardian.inputs.records import EventSink, OutRecord
from guardian.manual.tokens import TokenFile
from guardian.metrics import GuardianMetrics
from guardian.wire.cdevents import (
    HTTP_PREFIX,
    CDEventError,
    UnusedEventError,
    binary_attributes,
    decode_binary,
    decode_record,
)
from guardian.wire.events import (
    MAX_RECORD_BYTES,
    CheckEvent,
    DeployEvent,
    InputEvent,
    MetricEvent,
    encode_event,
    event_key,
)

log = structlog.get_logger(__name__)

PATH = "/v1/events"
DEPLOYER_ROLE = "deployer"
WRITE_TIMEOUT_S = 10.0
_RETRY = {"Retry-After": "1"}
_AT = re.compile(r" - at `\$\.?(.*)`$")


def _invalid(field: str, message: str) -> ProblemError:
    return ProblemError(
        400,
        "invalid-event",
        f"{field}: {message}" if field != "body" else message,
        extra={"errors": [{"field": field, "message": message}]},
    )


def _problem_of(exc: DecodeError) -> ProblemError:
    """The 400 of a decode error, with the field at fault (msgspec's path, or the CDEvent's)."""
    if isinstance(exc, CDEventError):
        path = exc.path.removeprefix("$").removeprefix(".") or "body"
        return _invalid(path, exc.problem)
    found = _AT.search(exc.reason)
    if found is None:
        return _invalid("body", exc.reason)
    return _invalid(found.group(1) or "body", exc.reason[: found.start()])


class DeployWebhook:
    """The ``/v1/events`` route over the inputs' writer and the tokens file."""

    def __init__(
        self,
        writer: EventSink,
        tokens: TokenFile,
        deploy_topic: str,
        metrics: GuardianMetrics,
        *,
        max_future_skew_ms: int = 300_000,
        write_timeout_s: float = WRITE_TIMEOUT_S,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._writer = writer
        self._tokens = tokens
        self._topic = deploy_topic
        self._metrics = metrics
        self._max_future_skew_ms = max_future_skew_ms
        self._write_timeout_s = write_timeout_s
        self._clock_ms = clock_ms

    def install(self, app: web.Application) -> None:
        """Add ``POST /v1/events`` to the control plane."""
        app.router.add_post(PATH, self.post)

    async def post(self, request: web.Request) -> web.Response:
        """Take one event; see the module docstring for the answers."""
        try:
            require_role(request, self._tokens, DEPLOYER_ROLE)
            event = self._decode(await read_body(request, MAX_RECORD_BYTES, "events"), request)
            await self._write(event)
        except ProblemError as problem:
            self._count(str(problem.status))
            return problem_response(problem, request.path)
        self._count("202")
        self._metrics.input_events.labels("webhook").inc()
        kind = "deploy" if isinstance(event, DeployEvent) else "check"
        body: dict[str, Any] = {"accepted": kind, "service": event.service}
        if isinstance(event, DeployEvent):
            body.update(type=event.type, deploy_id=event.deploy_id, version=event.version)
        log.info("webhook_event_accepted", **body, environment=event.environment)
        return web.json_response(body, status=202)

    def _count(self, outcome: str) -> None:
        self._metrics.input_batches.labels("webhook", outcome).inc()

    def _decode(self, body: bytes, request: web.Request) -> DeployEvent | CheckEvent:
        headers = list(request.headers.items())
        event: InputEvent
        try:
            attributes = binary_attributes(headers, HTTP_PREFIX)
            if attributes is not None:
                event = decode_binary(body, attributes)
            else:
                event = decode_record(body)
        except UnusedEventError as exc:
            raise _invalid(
                "type", f"{exc.reason}: only service.deployed, upgraded and rolledback"
            ) from None
        except DecodeError as exc:
            raise _problem_of(exc) from None
        if isinstance(event, MetricEvent):
            raise _invalid(
                "kind",
                "metric events are not taken here: write them to the metric topic, "
                "or send them by Prometheus remote write or OTLP",
            )
        ahead = event.timestamp - self._clock_ms()
        if ahead > self._max_future_skew_ms:
            raise _invalid(
                "timestamp",
                f"{ahead // 1000}s ahead of the guardian's clock (at most "
                f"{self._max_future_skew_ms // 1000}s)",
            )
        return event

    async def _write(self, event: DeployEvent | CheckEvent) -> None:
        if not self._writer.ready:
            raise ProblemError(503, "unavailable", "not connected to Kafka yet", headers=_RETRY)
        record = OutRecord(self._topic, event_key(event), encode_event(event))
        try:
            await asyncio.wait_for(self._writer.write([record]), self._write_timeout_s)
        except (SinkError, TimeoutError) as exc:
            log.warning("webhook_write_failed", error=str(exc) or "timeout")
            raise ProblemError(
                503,
                "unavailable",
                "Kafka did not acknowledge the event; send again",
                headers=_RETRY,
            ) from None

"""``POST /api/v1/write``: Prometheus remote write 1.0 on the control plane.

Answers as Prometheus expects (it retries 5xx, and 429 with
``retry_on_http_429``; it drops the batch on any other 4xx):

- 401 without a token the tokens file knows, 403 when it lacks the
  ``ingest`` role (problem+json, as the manual API);
- 503 while the producer is not connected or the broker does not
  acknowledge in time, 429 when too many writes are already waiting on it
  (both with ``Retry-After``): nothing is lost, Prometheus sends again;
- 413 above ``MAX_BODY_BYTES``; 400 for a body that can never be read (not
  snappy block format, not a ``WriteRequest``), after one dead letter with
  the reason and the body's first ``MAX_DEAD_LETTER_BYTES`` (written if the
  broker takes it in time; Prometheus drops the batch either way);
- 204 once every converted event, and the request's dead letter when some
  of its samples could not be used (no service, NaN, negative counters...:
  the rejection reasons), is acknowledged.

The series state advances only after the events are written, so a retried
request computes the same increments. Requests in flight at once claim
their series between converting and committing: one that carries a series
another request is still writing waits for it, then converts again against
what that one committed (Prometheus resharding, or resending a request
whose answer it missed, sends the same samples twice; they count once).
The wait is bounded by the write timeout (then 503: send again).

Samples left out are counted per reason
(``guardian_input_samples_skipped_total``) and logged at most every
``_LOG_EVERY_S``, never per sample; a request with rejected samples is
dead-lettered once (source ``{"transport": "http", "topic": "/api/v1/write"}``),
with ``3 of 12 samples not mapped: no_service=3`` as the reason. Without a
dead-letter topic (``dead_letters=None``) nothing is dead-lettered.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import structlog
from aiohttp import web

from guardian.api.problems import ProblemError, problem_response
from guardian.errors import DecodeError, SinkError
from guardian.inputs.adapters.accounting import InputAccount
from guardian.inputs.adapters.auth import require_role
from guardian.inputs.adapters.body import read_body
from guardian.inputs.assemble import Conversion
from guardian.inputs.cumulative import StateBatch
from guardian.inputs.records import (
    DeadLetters,
    EventSink,
    OutRecord,
    event_records,
    request_dead_letter,
)
from guardian.inputs.remote_write import RemoteWriteConverter, WriteSamples
from guardian.manual.tokens import TokenFile
from guardian.metrics import GuardianMetrics

log = structlog.get_logger(__name__)

PATH = "/api/v1/write"
INGEST_ROLE = "ingest"
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_IN_FLIGHT = 32
WRITE_TIMEOUT_S = 10.0
# A dead letter keeps this much of a body at most: enough to see what sent it.
MAX_DEAD_LETTER_BYTES = 64 * 1024
_LOG_EVERY_S = 10.0
_UNAUTHENTICATED = {"WWW-Authenticate": 'Bearer realm="guardian"'}
_RETRY = {"Retry-After": "1"}


class _Throttle:
    """At most one log line per key per interval."""

    def __init__(self, every_s: float) -> None:
        self._every_s = every_s
        self._last: dict[str, float] = {}

    def due(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -self._every_s) < self._every_s:
            return False
        self._last[key] = now
        return True


class RemoteWriteRoutes:
    """The remote-write endpoint over one converter and one writer."""

    def __init__(
        self,
        converter: RemoteWriteConverter,
        writer: EventSink,
        tokens: TokenFile,
        metric_topic: str,
        metrics: GuardianMetrics,
        *,
        max_in_flight: int = MAX_IN_FLIGHT,
        write_timeout_s: float = WRITE_TIMEOUT_S,
        dead_letters: DeadLetters | None = None,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.converter = converter
        self._writer = writer
        self._tokens = tokens
        self._topic = metric_topic
        self._account = InputAccount(metrics, "remote_write", converter.state)
        self._max_in_flight = max_in_flight
        self._write_timeout_s = write_timeout_s
        self._in_flight = 0
        self._metrics = metrics
        self._dead_letters = (
            None
            if dead_letters is None
            else DeadLetters(
                dead_letters.topic, min(dead_letters.max_original_bytes, MAX_DEAD_LETTER_BYTES)
            )
        )
        self._clock_ms = clock_ms
        self._throttle = _Throttle(_LOG_EVERY_S)
        self._skipped: Counter[str] = Counter()  # since the last log line
        # The batches of the requests writing now, and when each ends.
        self._writing: dict[StateBatch, asyncio.Event] = {}

    def install(self, app: web.Application) -> None:
        """Add ``POST /api/v1/write`` to the control plane."""
        app.router.add_post(PATH, self.write)

    async def write(self, request: web.Request) -> web.Response:
        """Take one remote-write request; see the module docstring for the answers."""
        try:
            self._authorize(request)
            if not self._writer.ready:
                raise ProblemError(503, "unavailable", "not connected to Kafka yet", headers=_RETRY)
            if self._in_flight >= self._max_in_flight:
                raise ProblemError(
                    429, "busy", "too many writes are waiting on Kafka", headers=_RETRY
                )
            self._in_flight += 1
            try:
                await self._take(request)
            finally:
                self._in_flight -= 1
        except ProblemError as problem:
            self._account.outcome(str(problem.status))
            return problem_response(problem, request.path)
        self._account.outcome("204")
        return web.Response(status=204)

    def _authorize(self, request: web.Request) -> None:
        require_role(request, self._tokens, INGEST_ROLE)

    async def _take(self, request: web.Request) -> None:
        body = await read_body(request, MAX_BODY_BYTES, "bodies")
        try:
            message = self.converter.read(body)
        except DecodeError as exc:
            if self._throttle.due("unreadable"):
                log.warning("remote_write_unreadable", reason=exc.reason, size=len(body))
            await self._write_unreadable(body, exc.reason)
            raise ProblemError(400, "unreadable", exc.reason) from None
        conversion, state = await self._convert(message)
        records = event_records(conversion.events, self._topic)
        letter = self._letter(body, conversion.rejection_reason())
        if letter is not None:
            records.append(letter)
        ended = self._writing[state] = asyncio.Event()
        try:
            await self._write(records)
            state.commit()
        finally:
            state.release()  # a no-op after the commit
            del self._writing[state]
            ended.set()
        self._account.record(conversion.samples, len(conversion.events), conversion.skipped)
        if letter is not None:
            self._metrics.dead_letters.inc()
        rejected = conversion.rejected
        if rejected:
            self._skipped.update(rejected)
            if self._throttle.due("rejected"):
                log.warning("remote_write_samples_not_mapped", **dict(self._skipped))
                self._skipped.clear()

    async def _convert(self, message: WriteSamples) -> tuple[Conversion, StateBatch]:
        """Convert against the newest state, once no other request is writing the same series."""
        try:
            async with asyncio.timeout(self._write_timeout_s):
                while True:
                    conversion, state = self.converter.convert(message)
                    blockers = state.claim()
                    if blockers is None:
                        return conversion, state
                    await asyncio.gather(*(self._writing[b].wait() for b in blockers))
        except TimeoutError:
            raise ProblemError(
                503, "unavailable", "the same series are still being written", headers=_RETRY
            ) from None

    async def _write(self, records: list[OutRecord]) -> None:
        try:
            await asyncio.wait_for(self._writer.write(records), self._write_timeout_s)
        except (SinkError, TimeoutError) as exc:
            if self._throttle.due("unavailable"):
                log.warning("remote_write_unavailable", error=str(exc) or "timeout")
            raise ProblemError(
                503,
                "unavailable",
                "Kafka did not acknowledge the events; send again",
                headers=_RETRY,
            ) from None

    def _letter(self, body: bytes, reason: str | None) -> OutRecord | None:
        """The request's dead letter, when there is a reason and a dead-letter topic."""
        if reason is None or self._dead_letters is None:
            return None
        return request_dead_letter(
            self._dead_letters, path=PATH, original=body, reason=reason, now_ms=self._clock_ms()
        )

    async def _write_unreadable(self, body: bytes, reason: str) -> None:
        """Dead-letter a body that can never be read; the 400 follows whether or not it lands."""
        letter = self._letter(body, reason)
        if letter is None:
            return
        try:
            await asyncio.wait_for(self._writer.write([letter]), self._write_timeout_s)
        except (SinkError, TimeoutError) as exc:
            if self._throttle.due("dead_letter_unwritten"):
                log.warning("remote_write_dead_letter_unwritten", error=str(exc) or "timeout")
            return
        self._metrics.dead_letters.inc()

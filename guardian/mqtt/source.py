"""MQTT source: v1 events from an MQTT broker, batched, reconnecting, acknowledged late.

``MqttSource`` keeps one aiomqtt connection alive in a background task: it
subscribes to the configured topic filters with QoS 1, copies each message
into an inbox as a transport-neutral ``RawRecord`` (``partition=-1``, ``offset``
= a sequence number unique for the life of the source, ``topic`` = the MQTT
topic), and, when the broker goes away, sets the readiness condition
``mqtt_connected`` to False and reconnects with exponential backoff. Broker
loss never raises out of the source; only a refused login does (a
non-retriable ``SourceError``), because retrying a wrong password fixes nothing.

Acknowledgements (QoS 1, at-least-once): aiomqtt 2.5 has no manual-ack
option, so the source switches it on in the paho client aiomqtt wraps
(``manual_ack_set``, paho >= 2.0) and sends each PUBACK from ``ack(batch)``,
which the caller invokes only after the batch's outputs are written.

Limits:
- A PUBACK owed on a connection that has since dropped cannot be sent. With the
  default random client id the session is clean, so the broker forgets those
  messages: they were already judged and their outputs written, so nothing is
  lost while the guardian lives, but messages in flight when the guardian
  *process* dies are lost. Set ``MqttOptions.client_id`` (a fixed id, one per
  replica) to get a persistent session: the broker then re-delivers every
  un-acknowledged message after a reconnect or restart, and some are judged
  twice (command ids are deterministic, so no second command results, but a
  metric sample may count twice in its window).
- MQTT has no consumer groups: each replica subscribed to the same filter gets
  every message. Use one replica per filter, or a shared subscription filter
  (``$share/guardian/guardian/#``) on brokers that support it.
- Brokers cap un-acknowledged QoS 1 messages per client (Mosquitto: 20 by
  default), which also caps the size of a batch; that is the intended flow control.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiomqtt
import structlog
from aiomqtt.exceptions import MqttConnectError

from guardian.config.settings import Settings
from guardian.errors import ConfigError, SourceError
from guardian.kafka.source import RawRecord

log = structlog.get_logger(__name__)

READINESS_CONDITION = "mqtt_connected"
_QOS = 1
# CONNACK codes that no amount of retrying fixes (MQTT 3.1.1 and 5 numbering).
_FATAL_CONNACK = frozenset({1, 2, 4, 5, 0x84, 0x85, 0x86, 0x87, 0x8C})


class ReadinessReporter(Protocol):
    """Where the source reports whether it is connected (``guardian.daemon.health.Readiness``)."""

    def set(self, name: str, value: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    """Where to connect, parsed from ``mqtt://[user:pass@]host[:port]`` or ``mqtts://``."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # the password must never reach a log line
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}:***@" if self.username else ""
        return f"MqttEndpoint({scheme}://{user}{self.host}:{self.port})"


def parse_mqtt_url(url: str) -> MqttEndpoint:
    """Parse an MQTT URL; a ConfigError names what is wrong (without echoing a password)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"invalid MQTT URL: {exc}") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(
            f"invalid MQTT URL: scheme must be mqtt:// or mqtts://, not {parts.scheme or 'none'!r}"
        )
    if not parts.hostname:
        raise ConfigError("invalid MQTT URL: no host (expected mqtt://HOST:PORT)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError("invalid MQTT URL: give topics with --mqtt-topic, not in the URL")
    tls = parts.scheme == "mqtts"
    return MqttEndpoint(
        host=parts.hostname,
        port=port if port is not None else (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


@dataclass(frozen=True, slots=True)
class MqttOptions:
    """Tuning knobs of the MQTT source (defaults suit a sidecar; not yet in ``Settings``)."""

    client_id: str | None = None  # None: random id, clean session; set: persistent session
    batch_max: int = 500
    batch_linger_ms: float = 5.0
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 5.0
    keepalive_s: int = 30
    connect_timeout_s: float = 5.0


@dataclass(frozen=True, slots=True)
class _Delivery:
    record: RawRecord
    mid: int
    qos: int
    client: aiomqtt.Client


class MqttSource:
    """Subscribes to ``settings.mqtt_topics`` and hands out batches of raw records."""

    def __init__(
        self,
        settings: Settings,
        readiness: ReadinessReporter,
        options: MqttOptions | None = None,
    ) -> None:
        if not settings.mqtt_url:
            raise ConfigError("the MQTT source needs mqtt_url (--mqtt-url / GUARDIAN_MQTT_URL)")
        self.endpoint = parse_mqtt_url(settings.mqtt_url)
        self.topics = list(settings.mqtt_topics)
        if not self.topics:
            raise ConfigError("the MQTT source needs at least one topic filter (--mqtt-topic)")
        self.options = options or MqttOptions()
        self._readiness = readiness
        self._inbox: asyncio.Queue[_Delivery] | None = None
        self._unacked: dict[int, _Delivery] = {}
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._sequence = itertools.count()
        self.connects = 0  # successful connections so far (tests and logs)

    @property
    def connected(self) -> bool:
        """True while a connection to the broker is up and subscribed."""
        return self._client is not None

    async def start(self) -> None:
        """Start connecting in the background; returns at once (readiness says when it is up)."""
        if self._task is not None:
            return
        self._readiness.set(READINESS_CONDITION, False)
        self._inbox = asyncio.Queue(maxsize=max(1000, 4 * self.options.batch_max))
        self._task = asyncio.create_task(self._maintain(), name="mqtt-connection")

    async def stop(self) -> None:
        """Disconnect and stop reconnecting; safe to call twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, SourceError):
                await task
        self._readiness.set(READINESS_CONDITION, False)

    async def __aenter__(self) -> MqttSource:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def next_batch(self, timeout_s: float) -> list[RawRecord]:
        """Messages that arrived together (up to ``batch_max``, or within ``batch_linger_ms``).

        Waits at most ``timeout_s`` for the first message and returns ``[]`` if none
        came. Raises ``SourceError`` (not retriable) only when the broker refused
        the login; a broker that is away is retried in the background.
        """
        inbox = self._require()
        try:
            first = await asyncio.wait_for(inbox.get(), timeout_s)
        except TimeoutError:
            self._raise_if_failed()
            return []
        batch = [first]
        loop = asyncio.get_running_loop()
        linger_until = loop.time() + self.options.batch_linger_ms / 1000
        while len(batch) < self.options.batch_max:
            if inbox.empty():
                remaining = linger_until - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(inbox.get(), remaining))
                except TimeoutError:
                    break
            else:
                batch.append(inbox.get_nowait())
        for delivery in batch:
            self._unacked[delivery.record.offset] = delivery
        return [delivery.record for delivery in batch]

    async def batches(self, poll_s: float = 0.2) -> AsyncIterator[list[RawRecord]]:
        """Batches forever (empty polls are skipped); break out of the loop to stop."""
        while True:
            batch = await self.next_batch(poll_s)
            if batch:
                yield batch

    async def ack(self, batch: Sequence[RawRecord]) -> int:
        """Send the PUBACKs of a batch whose outputs are written; return how many went out.

        A message whose connection has dropped since cannot be acknowledged any
        more (see the module's limits); it is skipped.
        """
        sent = 0
        for record in batch:
            delivery = self._unacked.pop(record.offset, None)
            if delivery is None or delivery.qos == 0 or delivery.client is not self._client:
                continue
            delivery.client._client.ack(delivery.mid, delivery.qos)  # private: see module docstring
            sent += 1
        return sent

    def _require(self) -> asyncio.Queue[_Delivery]:
        if self._inbox is None:
            raise SourceError("the MQTT source is not started", retriable=False)
        return self._inbox

    def _raise_if_failed(self) -> None:
        task = self._task
        if task is not None and task.done() and not task.cancelled():
            error = task.exception()
            if error is not None:
                raise error

    def _new_client(self) -> aiomqtt.Client:
        endpoint, options = self.endpoint, self.options
        client = aiomqtt.Client(
            endpoint.host,
            endpoint.port,
            username=endpoint.username,
            password=endpoint.password,
            identifier=options.client_id,
            clean_session=options.client_id is None,
            keepalive=options.keepalive_s,
            timeout=options.connect_timeout_s,
            tls_context=ssl.create_default_context() if endpoint.tls else None,
        )
        # aiomqtt 2.5 exposes no manual-ack switch; paho's is documented public API.
        client._client.manual_ack_set(True)  # private: see module docstring
        return client

    async def _maintain(self) -> None:
        """Connect, subscribe, pump messages into the inbox; on loss, back off and do it again."""
        inbox = self._require()
        delay = self.options.backoff_initial_s
        while True:
            try:
                async with self._new_client() as client:
                    for topic in self.topics:
                        await client.subscribe(topic, qos=_QOS)
                    self._client = client
                    self.connects += 1
                    self._readiness.set(READINESS_CONDITION, True)
                    log.info("mqtt_connected", broker=repr(self.endpoint), topics=self.topics)
                    delay = self.options.backoff_initial_s
                    async for message in client.messages:
                        await inbox.put(self._delivery(message, client))
            except aiomqtt.MqttError as exc:
                self._lost()
                if isinstance(exc, MqttConnectError) and _is_fatal(exc):
                    log.error("mqtt_login_refused", broker=repr(self.endpoint), error=str(exc))
                    raise SourceError(
                        f"MQTT broker {self.endpoint.host}:{self.endpoint.port} refused the "
                        f"connection: {exc}",
                        retriable=False,
                    ) from exc
                log.warning("mqtt_disconnected", error=str(exc), retry_in_s=delay)
            finally:
                self._lost()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.options.backoff_max_s)

    def _lost(self) -> None:
        if self._client is not None:
            self._client = None
            self._readiness.set(READINESS_CONDITION, False)

    def _delivery(self, message: aiomqtt.Message, client: aiomqtt.Client) -> _Delivery:
        record = RawRecord(
            topic=message.topic.value,
            partition=-1,
            offset=next(self._sequence),
            key=None,
            value=bytes(message.payload),
            timestamp_ms=time.time_ns() // 1_000_000,
        )
        return _Delivery(record, message.mid, message.qos, client)


def _is_fatal(exc: MqttConnectError) -> bool:
    """A refused login or protocol, as opposed to a busy or unavailable server."""
    rc = exc.rc
    code = rc if isinstance(rc, int) or rc is None else rc.value
    return code in _FATAL_CONNACK

"""What every Kafka client the guardian opens shares: connection options, access, producers.

Security (SASL/SSL) lives here once, so the consumer, producers, admin client
and the notification outbox all connect the same way.

``check_access`` opens one connection the way every client will (TLS
handshake, ApiVersions, SASL) and tells a refusal from an outage: a rejected
password, an untrusted broker certificate or a client certificate the broker
refuses is a ``ConfigError`` (waiting does not fix it), a broker that does
not answer is a retriable ``SourceError``. aiokafka's own clients log such a
refusal and report only "unable to bootstrap", which is why the connection
is opened here directly.

``start_producer`` is the one place that decides whether a producer is
idempotent: it asks the broker for a producer id (InitProducerId) and turns
idempotence on when it gets one (Apache Kafka), off with a logged reason when
the broker refuses (the embedded broker answers with an error).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka import errors as kafka_errors
from aiokafka.conn import AIOKafkaConnection, collect_hosts, create_conn
from aiokafka.protocol.transaction import InitProducerIdRequest

from guardian.config.settings import Settings
from guardian.errors import ConfigError, SourceError

log = structlog.get_logger(__name__)

# Longest one probe connection (and its requests) may take.
_PROBE_TIMEOUT_S = 10.0
# A non-transactional producer's transaction timeout, as aiokafka sends it.
_NO_TRANSACTION_TIMEOUT_MS = 2**31 - 1
# TLS failures that mean "the peer went away", not "the peer refused us".
_TLS_TRANSPORT_ERRORS = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)
_SASL_REFUSALS = (
    kafka_errors.SaslAuthenticationFailed,
    kafka_errors.UnsupportedSaslMechanismError,
    kafka_errors.IllegalSaslStateError,
)


def connection_options(settings: Settings, bootstrap_servers: str) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client: servers, client id and security."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers.split(","),
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings)
    if settings.security_protocol.startswith("SASL"):
        if not settings.sasl_mechanism or not settings.sasl_username:
            raise ConfigError(
                "security_protocol SASL_* needs sasl_mechanism and sasl_username "
                "(GUARDIAN_SASL_MECHANISM, GUARDIAN_SASL_USERNAME)"
            )
        password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
        options.update(
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=password,
        )
    return options


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(
            cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None
        )
        if settings.ssl_certfile:
            context.load_cert_chain(
                str(settings.ssl_certfile),
                str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
            )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load Kafka TLS files: {exc}") from None
    return context


def refusal(exc: BaseException, settings: Settings) -> ConfigError | None:
    """The configuration problem behind a failed connection, or None when it is an outage.

    aiokafka raises a SASL refusal as itself, a broker certificate the CA file
    does not trust as ``ssl.SSLCertVerificationError``, and a client
    certificate the broker refuses as a closed connection whose cause is the
    broker's TLS alert; the whole chain is searched.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _SASL_REFUSALS):
            return ConfigError(
                f"Kafka refused SASL authentication ({settings.sasl_mechanism}, user "
                f"{settings.sasl_username!r}): {seen}; check GUARDIAN_SASL_USERNAME, "
                "GUARDIAN_SASL_PASSWORD and GUARDIAN_SASL_MECHANISM"
            )
        if isinstance(seen, ssl.SSLCertVerificationError):
            return ConfigError(
                f"the Kafka broker's TLS certificate is not trusted: {seen.verify_message}; "
                "GUARDIAN_SSL_CAFILE must hold the CA that signed the brokers' certificates"
            )
        if isinstance(seen, ssl.SSLError) and not isinstance(seen, _TLS_TRANSPORT_ERRORS):
            return ConfigError(
                f"the Kafka broker refused the TLS handshake: {seen.reason or seen}; for "
                "mutual TLS GUARDIAN_SSL_CERTFILE/GUARDIAN_SSL_KEYFILE must be a client "
                "certificate signed by a CA the brokers trust"
            )
        seen = seen.__cause__ or seen.__context__
    return None


async def _open(settings: Settings, bootstrap_servers: str) -> AIOKafkaConnection:
    """One connection to the first bootstrap server that takes it, set up as clients do.

    ConfigError when a server refuses the credentials or TLS (no other server
    would accept them); SourceError (retriable) when none answers.
    """
    options = connection_options(settings, bootstrap_servers)
    del options["bootstrap_servers"]
    failures: list[str] = []
    for host, port, _family in collect_hosts(bootstrap_servers, randomize=False):
        try:
            connection: AIOKafkaConnection = await asyncio.wait_for(
                create_conn(host, port, **options), _PROBE_TIMEOUT_S
            )
        except (kafka_errors.KafkaError, OSError, TimeoutError) as exc:
            refused = refusal(exc, settings)
            if refused is not None:
                raise refused from exc
            failures.append(f"{host}:{port}: {exc!r}")
            continue
        return connection
    raise SourceError(f"no Kafka broker of {bootstrap_servers} answered: {'; '.join(failures)}")


async def check_access(settings: Settings, bootstrap_servers: str) -> None:
    """Connect once as every client will; ConfigError if the broker refuses the credentials."""
    connection = await _open(settings, bootstrap_servers)
    connection.close()


async def idempotence_refusal(settings: Settings, bootstrap_servers: str) -> str | None:
    """Why a producer on this cluster cannot be idempotent, or None when it can.

    Asks for a producer id as an idempotent producer would: Apache Kafka
    grants one; the embedded broker (Tansu, in memory) answers UNKNOWN although
    its ApiVersions lists InitProducerId, so that list alone does not tell.
    Raises SourceError when no broker answers and for a retriable answer that
    does not settle within the probe's time (a cluster still starting).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _PROBE_TIMEOUT_S
    request = InitProducerIdRequest(
        transactional_id=None,  # null: not a transactional producer
        transaction_timeout_ms=_NO_TRANSACTION_TIMEOUT_MS,
    )
    while True:
        connection = await _open(settings, bootstrap_servers)
        try:
            response = await asyncio.wait_for(connection.send(request), _PROBE_TIMEOUT_S)
        except kafka_errors.IncompatibleBrokerVersion:
            return "the broker does not offer InitProducerId (ApiVersions)"
        except (kafka_errors.KafkaError, OSError, TimeoutError) as exc:
            problem = repr(exc)  # the connection went away: ask again
        else:
            error = kafka_errors.for_code(response.error_code)
            if error is kafka_errors.NoError:
                return None
            if not error.retriable:
                return f"the broker refused a producer id (InitProducerId): {error.__name__}"
            problem = error.__name__  # e.g. a new cluster's controller is not ready yet
        finally:
            connection.close()
        if loop.time() > deadline:
            raise SourceError(f"no producer id from Kafka within {_PROBE_TIMEOUT_S:g}s: {problem}")
        await asyncio.sleep(0.2)


@dataclass(frozen=True, slots=True)
class StartedProducer:
    """A started producer and whether the broker let it be idempotent."""

    producer: AIOKafkaProducer
    idempotent: bool


async def start_producer(
    settings: Settings, bootstrap_servers: str, *, client: str, **options: Any
) -> StartedProducer:
    """A started acks=all producer, idempotent where the broker grants producer ids.

    ``client`` names the producer in the log line that says idempotence is
    off. Raises ConfigError for refused credentials, SourceError or KafkaError
    otherwise; a producer that failed to start is closed.
    """
    why_not = await idempotence_refusal(settings, bootstrap_servers)
    if why_not is not None:
        log.warning(
            "producer_idempotence_off",
            client=client,
            reason=why_not,
            note="a retried send may be written twice; records carry deterministic ids",
        )
    producer = AIOKafkaProducer(
        **connection_options(settings, bootstrap_servers),
        acks="all",
        enable_idempotence=why_not is None,
        **options,
    )
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    return StartedProducer(producer, idempotent=why_not is None)

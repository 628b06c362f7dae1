"""Topic bootstrap: create the guardian's topics when they are missing.

Input topics get ``topic_partitions`` partitions and are keyed by service, so
consumer-group replicas each own whole services. Replication is
``topic_replication`` or, unset, ``min(3, brokers)``, with
``min.insync.replicas=2`` from three replicas on, so an acknowledged write
survives the loss of a broker. The state topic is compacted, with segments
that roll (``state_segment_ms``) so the cleaner can actually compact them:
a restore then reads about one record per key.

Creation returns only once every new partition has a leader: Apache Kafka
answers CreateTopics before the partitions can take reads and writes.

Every admin connection retries an unreachable cluster for
``connect_timeout_s``; a cluster that refuses the credentials or the TLS
handshake is a ConfigError at once (exit code 2), never retried.
"""

from __future__ import annotations

import asyncio

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from guardian.config.settings import Settings
from guardian.errors import ConfigError, SourceError
from guardian.kafka.client import check_access, connection_options

log = structlog.get_logger(__name__)


def compacted_topic_config(settings: Settings) -> dict[str, str]:
    """Configs of a compacted state topic whose segments roll, so compaction runs."""
    return {
        "cleanup.policy": "compact",
        "segment.ms": str(settings.state_segment_ms),
        "min.cleanable.dirty.ratio": "0.1",
    }


def guardian_topics(settings: Settings) -> dict[str, dict[str, str]]:
    """Every topic the guardian reads or writes, with the configs it creates them with."""
    compacted = compacted_topic_config(settings)
    return {
        settings.deploy_topic: {},
        settings.metric_topic: {},
        settings.command_topic: {},
        settings.audit_topic: {},
        settings.dlq_topic: {},
        settings.notification_topic: {},
        settings.state_topic: compacted,
        **({settings.incident_topic: {}} if settings.incident_topic else {}),
    }


async def ensure_topics(settings: Settings, bootstrap_servers: str) -> list[str]:
    """Create missing topics; return the ones created. Retries an unreachable broker."""
    return await create_missing_topics(settings, bootstrap_servers, guardian_topics(settings))


async def create_missing_topics(
    settings: Settings, bootstrap_servers: str, wanted: dict[str, dict[str, str]]
) -> list[str]:
    """Create those of ``wanted`` (name → configs) that do not exist; wait for their leaders."""
    admin = await _connected_admin(settings, bootstrap_servers)
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return []
        brokers = len((await admin.describe_cluster())["brokers"])
        replication = replication_for(settings.topic_replication, brokers)
        durability = {"min.insync.replicas": "2"} if replication >= 3 else {}
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        name,
                        num_partitions=settings.topic_partitions,
                        replication_factor=replication,
                        topic_configs={**durability, **wanted[name]},
                    )
                    for name in missing
                ]
            )
        except TopicAlreadyExistsError:  # another replica was quicker: theirs will do
            log.info("topics_created_elsewhere", topics=missing)
        await _wait_for_leaders(admin, missing, settings.connect_timeout_s)
        log.info(
            "topics_created",
            topics=missing,
            partitions=settings.topic_partitions,
            replication=replication,
            brokers=brokers,
        )
        if replication == 1 and brokers >= 3:
            log.warning(
                "topics_not_replicated",
                topics=missing,
                brokers=brokers,
                note="replication 1 on a cluster of 3 or more brokers loses data with a broker; "
                "unset topic_replication to get min(3, brokers)",
            )
        return missing
    except KafkaError as exc:
        raise SourceError(f"cannot create topics: {exc}", retriable=False) from exc
    finally:
        await admin.close()


def replication_for(configured: int | None, brokers: int) -> int:
    """The replication factor of new topics: the configured one, else ``min(3, brokers)``."""
    if configured is not None:
        return configured
    return max(1, min(3, brokers))


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, topics: list[str], timeout_s: float
) -> None:
    """Until every partition of ``topics`` has a leader (or the deadline, then an error)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        described = await admin.describe_topics(topics)
        leaderless = [
            d["topic"]
            for d in described
            if d["error_code"] != 0
            or not d["partitions"]
            or any(p["error_code"] != 0 or p["leader"] < 0 for p in d["partitions"])
        ]
        if not leaderless:
            return
        if loop.time() > deadline:
            raise SourceError(
                f"topics {leaderless} have no leader {timeout_s:g}s after creation",
                retriable=False,
            )
        await asyncio.sleep(0.1)


async def check_copartitioned(settings: Settings, bootstrap_servers: str) -> int:
    """The input topics' common partition count; ConfigError when they differ.

    A service's deploys and metrics must reach the same replica: input topics
    are keyed by service, so that holds only when they have equal partition
    counts (and the range assignor hands out partition N of each together).
    """
    admin = await _connected_admin(settings, bootstrap_servers)
    try:
        described = await admin.describe_topics([settings.deploy_topic, settings.metric_topic])
    except KafkaError as exc:
        raise SourceError(f"cannot describe the input topics: {exc}", retriable=False) from exc
    finally:
        await admin.close()
    counts = {d["topic"]: len(d["partitions"]) for d in described}
    deploys, metrics = counts.get(settings.deploy_topic, 0), counts.get(settings.metric_topic, 0)
    if deploys != metrics:
        raise ConfigError(
            f"input topics are not co-partitioned: {settings.deploy_topic} has {deploys} "
            f"partition(s), {settings.metric_topic} has {metrics}; give them the same count "
            "so each service's deploys and metrics are judged by one replica"
        )
    return metrics


async def _connected_admin(settings: Settings, bootstrap_servers: str) -> AIOKafkaAdminClient:
    """An admin client, retrying an unreachable cluster until ``connect_timeout_s``.

    On a secured cluster one connection is opened first (``check_access``):
    a refused password or certificate is a ConfigError at once, not a retry
    loop that looks like an outage (aiokafka itself reports it only as
    "unable to bootstrap").
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.connect_timeout_s
    delay = 0.2
    while True:
        admin: AIOKafkaAdminClient | None = None
        try:
            if settings.security_protocol != "PLAINTEXT":
                await check_access(settings, bootstrap_servers)
            admin = AIOKafkaAdminClient(**connection_options(settings, bootstrap_servers))
            await admin.start()
        except (SourceError, KafkaError, OSError) as exc:
            if admin is not None:
                await admin.close()
            if loop.time() + delay > deadline:
                raise SourceError(
                    f"Kafka at {bootstrap_servers} unreachable for "
                    f"{settings.connect_timeout_s:g}s: {exc}",
                    retriable=False,
                ) from exc
            log.warning("broker_unreachable", bootstrap_servers=bootstrap_servers, retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
        return admin

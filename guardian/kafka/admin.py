"""Topic bootstrap: create the guardian's topics when they are missing.

Input topics get ``topic_partitions`` partitions and are keyed by service, so
consumer-group replicas each own whole services. The state topic is
compacted: it keeps the latest state per key, which is what a restart needs.
"""

from __future__ import annotations

import asyncio

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError

from guardian.config.settings import Settings
from guardian.errors import ConfigError, SourceError
from guardian.kafka.client import connection_options

log = structlog.get_logger(__name__)


def guardian_topics(settings: Settings) -> dict[str, dict[str, str]]:
    """Every topic the guardian reads or writes, with the configs it creates them with."""
    compacted = {"cleanup.policy": "compact"}
    return {
        settings.deploy_topic: {},
        settings.metric_topic: {},
        settings.command_topic: {},
        settings.audit_topic: {},
        settings.dlq_topic: {},
        settings.notification_topic: {},
        settings.state_topic: compacted,
    }


async def ensure_topics(settings: Settings, bootstrap_servers: str) -> list[str]:
    """Create missing topics; return the ones created. Retries an unreachable broker."""
    admin = await _connected_admin(settings, bootstrap_servers)
    try:
        existing = set(await admin.list_topics())
        wanted = guardian_topics(settings)
        missing = [name for name in wanted if name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        name,
                        num_partitions=settings.topic_partitions,
                        replication_factor=settings.topic_replication,
                        topic_configs=wanted[name],
                    )
                    for name in missing
                ]
            )
            log.info("topics_created", topics=missing, partitions=settings.topic_partitions)
        return missing
    except KafkaError as exc:
        raise SourceError(f"cannot create topics: {exc}", retriable=False) from exc
    finally:
        await admin.close()


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
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.connect_timeout_s
    delay = 0.2
    while True:
        admin = AIOKafkaAdminClient(**connection_options(settings, bootstrap_servers))
        try:
            await admin.start()
        except (KafkaConnectionError, KafkaError, OSError) as exc:
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

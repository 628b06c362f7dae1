"""``cdevent_topics`` in a running daemon: a CD tool's own topic leads to the rollback.

The deploy is announced only as a CDEvent on a topic of the CD tool's own
(Argo CD notifications writing to ``argocd.events``, say); the daemon's
CDEvents bridge forwards it to ``deploy.events``, and the bad release is
rolled back like any other. Settings that would make a bridge read its own
output are refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from guardian.config.settings import Settings, load_settings
from guardian.errors import ConfigError
from tests.integration.inputs.deploys_integration_test import _check_command, _release
from tests.integration.inputs.support import running
from tests.support.cdevents import cdevent, kafka_form
from tests.support.kafka import produce, read_for, read_until, unique

pytestmark = pytest.mark.kafka


async def test_a_cdevent_on_a_cd_tools_topic_rolls_back_the_bad_release(
    settings_factory: Callable[..., Settings],
) -> None:
    topic = unique("argocd.events")
    settings = settings_factory(cdevent_topics=[topic])
    deploy_ms = time.time_ns() // 1_000_000 - 120_000
    async with running(settings) as daemon:
        bootstrap = daemon.bootstrap_servers
        assert bootstrap
        for service in ("checkout", "cart"):
            _, value = kafka_form(
                cdevent(service=service, at_ms=deploy_ms, event_id=f"up-{service}"), "bare"
            )
            await produce(bootstrap, topic, [(service.encode(), value)])
        await _release(bootstrap, settings, deploy_ms)
        commands = await read_until(bootstrap, settings.command_topic, bool, timeout_s=30)
        commands = await read_for(bootstrap, settings.command_topic, 1.0)
    _check_command(commands)


def test_a_bridge_reading_the_deploy_topic_is_refused() -> None:
    with pytest.raises(ConfigError, match="must not name the input topics"):
        load_settings(cdevent_topics=["deploy.events"])
    with pytest.raises(ConfigError, match="must not name the input topics"):
        load_settings(otlp_topics=["metric.events"])

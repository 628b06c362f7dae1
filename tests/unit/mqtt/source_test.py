"""MQTT source without a broker: URL parsing, configuration errors, ack bookkeeping."""

from __future__ import annotations

from typing import Any

import pytest

from guardian.config.settings import Settings
from guardian.daemon.health import Readiness
from guardian.errors import ConfigError, SourceError
from guardian.mqtt.source import MqttEndpoint, MqttSource, parse_mqtt_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://broker:1884", MqttEndpoint("broker", 1884, tls=False)),
        ("mqtt://broker", MqttEndpoint("broker", 1883, tls=False)),
        ("mqtts://broker", MqttEndpoint("broker", 8883, tls=True)),
        ("mqtts://broker:9999/", MqttEndpoint("broker", 9999, tls=True)),
        (
            "mqtt://user:p%40ss@10.0.0.1:1883",
            MqttEndpoint("10.0.0.1", 1883, tls=False, username="user", password="p@ss"),
        ),
        ("mqtt://only-user@h:1", MqttEndpoint("h", 1, tls=False, username="only-user")),
        ("mqtt://[::1]:1883", MqttEndpoint("::1", 1883, tls=False)),
    ],
)
def test_valid_urls_parse_into_endpoints(url: str, expected: MqttEndpoint) -> None:
    """Scheme, host, port (with per-scheme defaults) and percent-encoded credentials are read."""
    assert parse_mqtt_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("tcp://broker:1883", "scheme must be mqtt:// or mqtts://"),
        ("broker:1883", "scheme must be"),
        ("mqtt://:1883", "no host"),
        ("mqtt://broker:notaport", "invalid MQTT URL"),
        ("mqtt://broker:1883/guardian/#", "--mqtt-topic"),
        ("mqtt://broker:1883?x=1", "--mqtt-topic"),
    ],
)
def test_invalid_urls_are_config_errors(url: str, message: str) -> None:
    """A malformed URL is a ConfigError that says what is wrong."""
    with pytest.raises(ConfigError, match="invalid MQTT URL") as caught:
        parse_mqtt_url(url)
    assert message in str(caught.value)


def test_endpoint_repr_hides_the_password() -> None:
    """An endpoint printed in a log line shows the user but never the password."""
    endpoint = parse_mqtt_url("mqtts://svc:hunter2@broker:8883")
    assert "hunter2" not in repr(endpoint)
    assert repr(endpoint) == "MqttEndpoint(mqtts://svc:***@broker:8883)"
    assert repr(parse_mqtt_url("mqtt://b")) == "MqttEndpoint(mqtt://b:1883)"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({}, "needs mqtt_url"), ({"mqtt_url": "mqtt://b", "mqtt_topics": []}, "topic filter")],
)
def test_source_without_url_or_topics_refuses_to_build(
    overrides: dict[str, Any], message: str
) -> None:
    """A source needs a URL and at least one topic filter; both are checked before any I/O."""
    with pytest.raises(ConfigError, match=message):
        MqttSource(Settings(**overrides), Readiness())


async def test_source_must_be_started_before_reading() -> None:
    """Asking an unstarted source for a batch is a non-retriable SourceError."""
    source = MqttSource(Settings(mqtt_url="mqtt://127.0.0.1:1"), Readiness())
    with pytest.raises(SourceError, match="not started") as caught:
        await source.next_batch(0.01)
    assert caught.value.retriable is False
    assert await source.ack([]) == 0
    await source.stop()  # stopping a source that never started is harmless

"""Connection options shared by every Kafka client the guardian opens.

Security (SASL/SSL) lives here once, so the consumer, producers, admin client
and the notification outbox all connect the same way.
"""

from __future__ import annotations

import ssl
from typing import Any

from guardian.config.settings import Settings
from guardian.errors import ConfigError


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

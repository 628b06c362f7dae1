"""The guardian's exception hierarchy.

Every error the guardian raises on purpose derives from ``GuardianError``.
Callers branch on ``retriable``: a retriable error is worth backing off and
trying again (a broker that is briefly away), a non-retriable one is not
(bad configuration, a rejected credential).

    GuardianError
    ├── ConfigError            bad settings, rules or subscriptions (never retriable)
    ├── DecodeError            one input record is not a valid v1 event (dead-letter it)
    ├── SourceError            reading from a broker failed
    ├── SinkError              writing to a broker, Slack or SMTP failed
    └── KubeError              a Kubernetes API call of the executor failed (guardian.executor.kube;
                               409 = conflict, retriable for 429, 5xx and no answer)

Third-party exceptions are wrapped at the adapter edge
(``raise SinkError(...) from exc``) so nothing above the adapters imports them.
"""

from __future__ import annotations


class GuardianError(Exception):
    """Root of every error the guardian raises on purpose."""

    retriable: bool = False

    def __init__(self, message: str, *, retriable: bool | None = None) -> None:
        super().__init__(message)
        if retriable is not None:
            self.retriable = retriable


class ConfigError(GuardianError):
    """Settings, rules, subscriptions or tokens are invalid; the operator must fix them."""


class DecodeError(GuardianError):
    """One input record is not a valid v1 event; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, retriable=False)
        self.reason = reason


class SourceError(GuardianError):
    """Reading from an input broker failed."""

    retriable = True


class SinkError(GuardianError):
    """Writing to an output (Kafka, Slack, SMTP) failed."""

    retriable = True

"""Settings of ``guardian execute``: the daemon's Kafka settings plus the executor's own.

``ExecutorSettings`` subclasses ``guardian.config.settings.Settings``, so the
connection, security, topic names and ``signing_key`` are the very same
``GUARDIAN_*`` variables the daemon reads (one Secret serves both). Its own
fields carry an ``executor_`` prefix where the daemon has a field of the same
job (group, HTTP address), so an environment shared with the daemon (a
sidecar) never makes the executor join the daemon's consumer group.

Precedence: flag > ``GUARDIAN_*`` environment > ``--config`` YAML > default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from guardian.config.settings import Settings, load_settings_of


class ExecutorSettings(Settings):
    """Everything an operator can set for ``guardian execute``."""

    targets_file: Path = Field(Path("targets.yaml"), description="targets.yaml: where to act")
    executor_group_id: str = Field(
        "guardian-executor", description="Consumer group of the executors (not the daemon's)"
    )
    executor_http: str = Field(
        "127.0.0.1:8081", description="HOST:PORT of the executor's health and metrics"
    )
    applied_topic: str = Field(
        "guardian.executor.applied",
        description="Compacted topic: command id → what the executor did with it",
    )
    kubeconfig: Path | None = Field(
        None,
        description="kubeconfig file; unset = in-cluster service account, then $KUBECONFIG, "
        "then ~/.kube/config",
    )
    dry_run: bool = Field(False, description="Log what would be done; patch and report nothing")
    require_signature: bool = Field(
        True, description="With signing_key set, refuse unsigned commands (else only forged ones)"
    )
    accept_legacy_signatures: bool = Field(
        True, description="Accept the pre-JCS signature scheme (bare hex)"
    )
    converge_timeout_s: float = Field(
        300.0, gt=0, description="How long a rollout may take to finish before it is 'failed'"
    )
    poll_interval_s: float = Field(
        1.0, gt=0, description="How often the executor reads a rollout's status while waiting"
    )
    conflict_retries: int = Field(
        5, ge=0, description="Re-reads after a 409 Conflict before the command is 'failed'"
    )
    max_command_age_s: float = Field(
        3600.0,
        gt=0,
        description="Commands issued longer ago are refused as expired (a new group reading "
        "old history must not act on it)",
    )
    kube_timeout_s: float = Field(10.0, gt=0, description="Timeout of one Kubernetes API call")

    @field_validator("executor_http")
    @classmethod
    def _check_executor_http(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("expected HOST:PORT")
        return value

    @property
    def executor_http_host(self) -> str:
        """Host part of ``executor_http``."""
        return self.executor_http.rpartition(":")[0].strip("[]")

    @property
    def executor_http_port(self) -> int:
        """Port part of ``executor_http``."""
        return int(self.executor_http.rpartition(":")[2])

    def kafka_settings(self) -> Settings:
        """The settings the Kafka adapters get: the executor's group in ``group_id``."""
        values = {name: getattr(self, name) for name in Settings.model_fields}
        values["group_id"] = self.executor_group_id
        return Settings.model_construct(**values)


def load_executor_settings(config_file: Path | None = None, **flags: Any) -> ExecutorSettings:
    """Build settings from flags (None = not given), environment and an optional YAML file."""
    return load_settings_of(ExecutorSettings, config_file, **flags)


EXECUTOR_FLAGS = {
    "targets_file": "--targets",
    "kubeconfig": "--kubeconfig",
    "executor_http": "--http",
    "executor_group_id": "--group-id",
    "dry_run": "--dry-run",
}


def executor_reference_table() -> str:
    """Markdown: the executor's own settings (the rest are the daemon's, same variables)."""
    lines = [
        "| setting (YAML key) | environment | flag | default | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, field in ExecutorSettings.model_fields.items():
        if name in Settings.model_fields:
            continue
        flag = f"`{EXECUTOR_FLAGS[name]}`" if name in EXECUTOR_FLAGS else ""
        default = "—" if field.default is None else f"`{field.default}`"
        lines.append(
            f"| `{name}` | `GUARDIAN_{name.upper()}` | {flag} | {default} "
            f"| {field.description or ''} |"
        )
    return "\n".join(lines) + "\n"

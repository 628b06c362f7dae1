"""Deployment settings: command-line flag > ``GUARDIAN_*`` environment > YAML file > default.

Every field here is documented in the README's configuration table, which is
generated from this model (``guardian config reference``) so it cannot drift.
Secrets are ``SecretStr`` and never reach a log line.
"""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from guardian.errors import ConfigError

_file_values: ContextVar[dict[str, Any]] = ContextVar("guardian_file_values", default={})  # noqa: B039 - read-only default


# Apache Kafka answers a waiting fetch as soon as data arrives, so a long wait
# costs no detection latency and saves idle requests (Kafka's own default is
# 500 ms). The embedded broker answers only when the wait runs out, so there
# the wait is the latency floor.
KAFKA_FETCH_WAIT_MS = 500
EMBEDDED_FETCH_WAIT_MS = 10

# The memory budget: the daemon itself (interpreter, libraries, Kafka client, rule
# pack, buffers of a full batch: ~82 MB RSS measured with 1,000 series) is reserved
# first; the rest is divided by what one series costs. benchmarks/memory.py measured
# 10.6 KB of RSS per series with no live deploy (one event per 10 s, two of the four
# baseline measures sent; ~12 KB with all four), and ~11 KB per name in the flood a
# bad label produces (a service per series); a series sending every second keeps ~3 KB
# more in its lateness buffer, and live deploys (14 KB per series) may take their
# series past the cap, so the figure below has that margin.
DAEMON_RESERVED_MB = 96
SERIES_BUDGET_BYTES = 16 * 1024
MIN_MEMORY_BUDGET_MB = 128


class _YamlFileSource(PydanticBaseSettingsSource):
    """The lowest-priority source: values from ``--config FILE``."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return _file_values.get().get(field_name), field_name, False  # pragma: no cover

    def __call__(self) -> dict[str, Any]:
        return dict(_file_values.get())


class Settings(BaseSettings):
    """Everything an operator can set for ``guardian run``."""

    model_config = SettingsConfigDict(
        env_prefix="GUARDIAN_", frozen=True, extra="forbid", populate_by_name=True
    )

    # --- Kafka connection
    bootstrap_servers: str | None = Field(
        None,
        description="Kafka bootstrap servers, HOST:PORT,...; unset = start the embedded broker",
    )
    group_id: str = Field("guardian", description="Consumer group shared by all replicas")
    client_id: str = Field("guardian", description="Kafka client id prefix")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism when the protocol is SASL_*"
    )
    sasl_username: str | None = Field(None, description="SASL user name")
    sasl_password: SecretStr | None = Field(None, description="SASL password (secret)")
    ssl_cafile: Path | None = Field(None, description="CA bundle to verify the brokers")
    ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS)")
    ssl_keyfile: Path | None = Field(None, description="Client private key (mutual TLS)")
    session_timeout_ms: int = Field(
        10_000, ge=1000, description="Consumer session timeout: how fast a dead replica is replaced"
    )
    heartbeat_interval_ms: int = Field(3_000, ge=100, description="Consumer heartbeat interval")
    fetch_max_wait_ms: int | None = Field(
        None,
        ge=0,
        description="Longest a fetch waits for data; unset: 10 (embedded broker), 500 (Kafka)",
    )
    max_batch_records: int = Field(5_000, ge=1, description="Most records taken in one batch")
    linger_ms: int = Field(
        0, ge=0, description="Producer linger; 0 sends a command at once (a batch goes as one)"
    )
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", description="Where a group with no committed offsets starts"
    )
    topic_partitions: int = Field(4, ge=1, description="Partitions of topics the guardian creates")
    topic_replication: int | None = Field(
        None, ge=1, description="Replication of topics it creates; unset: min(3, brokers)"
    )
    state_segment_ms: int = Field(
        600_000,
        ge=1,
        description="Segment roll of the compacted state topic, so compaction runs (ms)",
    )
    create_topics: bool = Field(True, description="Create missing topics at start")
    connect_timeout_s: float = Field(
        60.0, gt=0, description="How long to retry an unreachable broker before giving up"
    )

    # --- topics
    deploy_topic: str = Field("deploy.events", description="Deploy and check events (input)")
    metric_topic: str = Field("metric.events", description="Metric events (input)")
    command_topic: str = Field("rollback.commands", description="Rollback commands (output)")
    audit_topic: str = Field("guardian.audit", description="Audit records (output)")
    dlq_topic: str = Field("guardian.dlq", description="Dead letters (output)")
    notification_topic: str = Field(
        "guardian.notifications", description="Durable outbox of notifications"
    )
    state_topic: str = Field("guardian.state", description="Compacted state changelog")
    incident_topic: str | None = Field(
        "guardian.incidents",
        description="Rollback decisions as CDEvents incident.detected/resolved (output); "
        "empty = not published",
    )

    # --- rules and engine
    rules: Path = Field(Path("rules"), description="Rule file or directory")
    allowed_lateness_s: float = Field(
        60.0, ge=0, description="Events older than this behind their service's newest are skipped"
    )
    max_future_skew_s: float = Field(
        300.0, gt=0, description="Events further ahead of the wall clock are dead-lettered"
    )
    memory_budget_mb: int = Field(
        256,
        ge=MIN_MEMORY_BUDGET_MB,
        description="Memory the daemon may use (MB); the series cap follows from it (see "
        "max_series); new series beyond it are refused unless their service has a live deploy",
    )
    max_series: int | None = Field(
        None,
        ge=1,
        description="Cap on tracked metric series; unset = derived from memory_budget_mb "
        f"(budget − {DAEMON_RESERVED_MB} MB for the daemon itself, "
        f"÷ {SERIES_BUDGET_BYTES:,} bytes per series)",
    )
    idle_service_ttl_s: float = Field(
        7200.0,
        ge=0,
        description="A service silent this long (event time), with no live deploy, is "
        "forgotten; never less than the rules' history horizon; 0 keeps all",
    )
    dlq_max_original_bytes: int = Field(
        512 * 1024, ge=1024, description="Original bytes kept in a dead letter before truncation"
    )

    # --- control plane
    http: str = Field("127.0.0.1:8080", description="HOST:PORT of health, metrics and API")
    tokens_file: Path | None = Field(None, description="API tokens (YAML, hashed)")
    grace_period_s: float = Field(20.0, gt=0, description="Drain time on SIGTERM before exit")
    manual_roles: list[str] = Field(
        default_factory=lambda: ["SRE", "DevOps Lead"],
        description="Roles that may request a manual rollback",
    )
    manual_approver_roles: list[str] | None = Field(
        None, description="Roles that may approve one (unset = the requesting roles)"
    )
    manual_request_ttl_s: float = Field(
        1800.0, gt=0, description="How long a manual rollback request waits for approval"
    )

    # --- commands and notifications
    signing_key: SecretStr | None = Field(None, description="HMAC key to sign commands (secret)")
    subscriptions: Path | None = Field(None, description="Who hears about what (YAML)")
    slack_token: SecretStr | None = Field(None, description="Slack bot token (secret)")
    slack_base_url: str = Field(
        "https://slack.com/api/", description="Slack Web API address (tests, proxies)"
    )
    smtp_host: str | None = Field(None, description="SMTP server for email notifications")
    smtp_port: int = Field(25, description="SMTP port")
    smtp_username: str | None = Field(None, description="SMTP user name")
    smtp_password: SecretStr | None = Field(None, description="SMTP password (secret)")
    smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS")
    smtp_from: str = Field("guardian@localhost", description="Sender address of emails")
    smtp_ca_file: Path | None = Field(
        None, description="CA bundle to verify the SMTP server (STARTTLS); unset = system CAs"
    )
    notify_repeat_interval_s: float = Field(
        4 * 3600.0, ge=0, description="Least time between two posts of a firing incident"
    )
    notify_backoff_initial_s: float = Field(1.0, gt=0, description="First notification retry")
    notify_backoff_max_s: float = Field(60.0, gt=0, description="Longest notification retry delay")
    notify_storm_threshold: int = Field(
        5, ge=1, description="New incidents of distinct services in the window that make a storm"
    )
    notify_storm_window_s: float = Field(60.0, gt=0, description="Storm detection window")
    notify_send_timeout_s: float = Field(15.0, gt=0, description="Timeout of one Slack/SMTP call")

    # --- MQTT
    mqtt_url: str | None = Field(None, description="mqtt://[user:pass@]HOST:PORT or mqtts://")
    mqtt_topics: list[str] = Field(
        default_factory=lambda: ["guardian/#"], description="MQTT topic filters"
    )

    # --- inputs from the ecosystem (OTLP, Prometheus remote write)
    otlp_topics: list[str] = Field(
        default_factory=list,
        description="OTLP metric topics to convert to metric events (the Collector's Kafka "
        "exporter writes otlp_metrics); empty = no OTLP bridge",
    )
    otlp_encoding: Literal["otlp_proto", "otlp_json"] = Field(
        "otlp_proto", description="Encoding of the OTLP records (the exporter's encoding)"
    )
    cdevent_topics: list[str] = Field(
        default_factory=list,
        description="CD tools' own topics whose CDEvents are forwarded to deploy_topic as v1 "
        "(group <group_id>-cdevents); empty = none (deploy_topic reads CDEvents anyway)",
    )
    inputs_file: Path | None = Field(
        None, description="inputs.yaml: how OTLP and Prometheus metrics map; unset = defaults"
    )
    inputs_max_series: int = Field(
        200_000,
        ge=1,
        description="Cumulative series each input remembers; the least recently updated goes",
    )

    # --- logs
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level")
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto = console on a TTY, JSON otherwise"
    )

    @field_validator("http")
    @classmethod
    def _check_host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("expected HOST:PORT")
        return value

    @model_validator(mode="after")
    def _check_bridged_topics(self) -> Settings:
        # A bridge that reads the topic it writes would forward its own output for ever.
        own = {self.deploy_topic, self.metric_topic}
        looped = sorted(own & {*self.cdevent_topics, *self.otlp_topics})
        if looped:
            raise ValueError(
                f"cdevent_topics and otlp_topics must not name the input topics: {looped}"
            )
        return self

    @property
    def fetch_wait_ms(self) -> int:
        """The fetch wait in force: the setting, or Kafka's default when unset."""
        return KAFKA_FETCH_WAIT_MS if self.fetch_max_wait_ms is None else self.fetch_max_wait_ms

    def for_embedded_broker(self) -> Settings:
        """These settings on the embedded broker: an unset fetch wait becomes 10 ms."""
        if self.fetch_max_wait_ms is not None:
            return self
        return self.model_copy(update={"fetch_max_wait_ms": EMBEDDED_FETCH_WAIT_MS})

    @property
    def series_cap(self) -> int:
        """The series cap in force: ``max_series`` if set, else what the memory budget holds."""
        if self.max_series is not None:
            return self.max_series
        return series_cap_for(self.memory_budget_mb)

    @property
    def http_host(self) -> str:
        """Host part of ``http``."""
        return self.http.rpartition(":")[0].strip("[]")

    @property
    def http_port(self) -> int:
        """Port part of ``http``."""
        return int(self.http.rpartition(":")[2])

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _YamlFileSource(settings_cls)


_S = TypeVar("_S", bound=Settings)


def series_cap_for(memory_budget_mb: int) -> int:
    """How many series fit in a memory budget once the daemon's own share is reserved."""
    spare = max(0, memory_budget_mb - DAEMON_RESERVED_MB) * 1024 * 1024
    return max(1_000, spare // SERIES_BUDGET_BYTES)


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """Build settings from flags (None = not given), environment and an optional YAML file."""
    return load_settings_of(Settings, config_file, **flags)


def load_settings_of(kind: type[_S], config_file: Path | None = None, **flags: Any) -> _S:
    """``load_settings`` for ``Settings`` or a subclass (the executor's)."""
    file_values: dict[str, Any] = {}
    if config_file is not None:
        file_values = _read_config_file(config_file)
    token = _file_values.set(file_values)
    try:
        return kind(**{key: value for key, value in flags.items() if value is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        source = f" (file {config_file})" if config_file else ""
        raise ConfigError(f"invalid settings{source}: {problems}") from None
    finally:
        _file_values.reset(token)


def _read_config_file(path: Path) -> dict[str, Any]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of setting: value")
    return {str(key).replace("-", "_"): value for key, value in data.items()}

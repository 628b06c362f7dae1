"""The configuration reference table, generated from the settings model.

The README embeds this table between markers; a test checks they match, so
the documentation cannot drift from the code.
"""

from __future__ import annotations

from guardian.config.settings import Settings

FLAGS = {
    "bootstrap_servers": "--bootstrap-servers",
    "rules": "--rules",
    "subscriptions": "--subscriptions",
    "http": "--http",
    "group_id": "--group-id",
    "tokens_file": "--tokens",
    "mqtt_url": "--mqtt-url",
}


def _default(name: str) -> str:
    field = Settings.model_fields[name]
    factory = field.default_factory
    value = factory() if factory is not None else field.default  # type: ignore[call-arg]
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(f"`{item}`" for item in value)
    return f"`{value}`"


def reference_table() -> str:
    """Markdown: one row per setting with its file key, environment variable, flag and default."""
    lines = [
        "| setting (YAML key) | environment | flag | default | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        flag = f"`{FLAGS[name]}`" if name in FLAGS else ""
        lines.append(
            f"| `{name}` | `GUARDIAN_{name.upper()}` | {flag} | {_default(name)} "
            f"| {field.description or ''} |"
        )
    return "\n".join(lines) + "\n"

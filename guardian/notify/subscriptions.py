"""``subscriptions.yaml``: who hears about what, validated with file:line:column errors.

A subscription matches decisions on service, environment, severity and region
(exact values, globs, lists, ``!negation`` — the same matchers as rules) and
names its channels: Slack channels (bot token), Slack incoming-webhook URLs
and email addresses. ``route`` turns a decision into the set of destinations
it reaches; a destination reached through two subscriptions gets one message.

Limits: a decision with no regions reaches a subscription with a ``region``
matcher only if the matcher accepts the empty string.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from guardian.engine.rules.compiled import Matcher, compile_patterns
from guardian.errors import ConfigError
from guardian.yamldoc import YamlProblem, YamlProblems, parse_located

SEVERITIES = ("critical", "warning", "info")


def _patterns(value: object) -> tuple[str, ...]:
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ValueError("expected a pattern or a non-empty list of patterns")


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ValueError("expected a string or a list of non-empty strings")


Patterns = Annotated[tuple[str, ...], BeforeValidator(_patterns)]
Strings = Annotated[tuple[str, ...], BeforeValidator(_strings)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SubscriptionMatch(_Model):
    """Matchers on a decision's labels; an absent matcher accepts everything."""

    service: Patterns | None = None
    environment: Patterns | None = None
    severity: Patterns | None = None
    region: Patterns | None = None

    @field_validator("severity")
    @classmethod
    def _known_severity(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for pattern in value or ():
            bare = pattern.removeprefix("!")
            if not any(compile_patterns((bare,))(s) for s in SEVERITIES):
                raise ValueError(f"{pattern!r} matches no severity (critical, warning, info)")
        return value


class Subscription(_Model):
    """One team's interest and where to tell them."""

    name: str = Field(min_length=1)
    match: SubscriptionMatch = Field(default_factory=SubscriptionMatch)
    slack: Strings = ()
    slack_webhook: Strings = ()
    email: Strings = ()

    @field_validator("email")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            local, at, domain = address.partition("@")
            if not (local and at and domain) or " " in address:
                raise ValueError(f"{address!r} is not an email address")
        return value

    @field_validator("slack_webhook")
    @classmethod
    def _urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith(("https://", "http://")):
                raise ValueError("a webhook must be an http(s):// URL")
        return value


class SubscriptionFile(_Model):
    """The whole file: a list of subscriptions with unique names."""

    subscriptions: list[Subscription] = Field(default_factory=list)

    @field_validator("subscriptions")
    @classmethod
    def _unique(cls, value: list[Subscription]) -> list[Subscription]:
        seen: set[str] = set()
        for sub in value:
            if sub.name in seen:
                raise ValueError(f"duplicate subscription name {sub.name!r}")
            seen.add(sub.name)
        return value


@dataclass(frozen=True, slots=True)
class Destination:
    """One place a message goes: a Slack channel, a webhook or an email address."""

    kind: Literal["slack", "webhook", "email"]
    target: str
    # Webhook URLs are secrets: logs and audit records name them by subscription.
    label: str

    @property
    def channel(self) -> str:
        """The metrics label: ``slack`` or ``email`` (webhooks count as Slack)."""
        return "email" if self.kind == "email" else "slack"


@dataclass(frozen=True, slots=True)
class CompiledSubscription:
    """A subscription with its matchers compiled once."""

    spec: Subscription
    service: Matcher
    environment: Matcher
    severity: Matcher
    region: Matcher | None

    def matches(
        self, service: str, environment: str, severity: str | None, regions: Sequence[str]
    ) -> bool:
        """Whether a decision with these labels reaches it (``severity=None``: any severity)."""
        if not (self.service(service) and self.environment(environment)):
            return False
        if severity is not None and not self.severity(severity):
            return False
        if self.region is None:
            return True
        return any(self.region(r) for r in regions or ("",))

    def destinations(self) -> list[Destination]:
        """Every channel of this subscription."""
        spec = self.spec
        out = [Destination("slack", c, f"slack:{c}") for c in spec.slack]
        out += [
            Destination("webhook", url, f"webhook:{spec.name}#{i}")
            for i, url in enumerate(spec.slack_webhook)
        ]
        out += [Destination("email", a, f"email:{a}") for a in spec.email]
        return out


def compile_subscriptions(parsed: SubscriptionFile) -> list[CompiledSubscription]:
    """Matchers for every subscription, in file order."""
    return [
        CompiledSubscription(
            spec=s,
            service=compile_patterns(s.match.service),
            environment=compile_patterns(s.match.environment),
            severity=compile_patterns(s.match.severity),
            region=compile_patterns(s.match.region) if s.match.region is not None else None,
        )
        for s in parsed.subscriptions
    ]


def route(
    subscriptions: Iterable[CompiledSubscription],
    *,
    service: str,
    environment: str,
    severity: str | None,
    regions: Sequence[str] = (),
) -> list[Destination]:
    """The distinct destinations a decision reaches, in subscription order.

    ``severity=None`` skips the severity filter: a deploy confirmation must reach
    every destination that may hold one of the deploy's incidents.
    """
    seen: dict[tuple[str, str], Destination] = {}
    for sub in subscriptions:
        if sub.matches(service, environment, severity, regions):
            for dest in sub.destinations():
                seen.setdefault((dest.kind, dest.target), dest)
    return list(seen.values())


# --------------------------------------------------------------------------- loading


# One thing wrong in a subscriptions file, located for an editor.
SubscriptionProblem = YamlProblem


class SubscriptionError(ConfigError):
    """The subscriptions file is invalid; ``problems`` lists every problem."""

    def __init__(self, problems: Sequence[SubscriptionProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = list(problems)


def parse_subscriptions(text: str, filename: str = "<subscriptions>") -> SubscriptionFile:
    """Validate a subscriptions file's text; raise ``SubscriptionError`` listing every problem."""
    try:
        parsed, _ = parse_located(SubscriptionFile, text, filename)
    except YamlProblems as exc:
        raise SubscriptionError(exc.problems) from None
    return parsed


def load_subscriptions(path: Path) -> list[CompiledSubscription]:
    """Read, validate and compile a subscriptions file; raise ``SubscriptionError``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SubscriptionError(
            [SubscriptionProblem(str(path), 1, 1, "(file)", str(exc))]
        ) from None
    return compile_subscriptions(parse_subscriptions(text, str(path)))

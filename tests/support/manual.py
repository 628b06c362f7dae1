"""Helpers for manual rollback tests: deploys, token files, an output writer that records."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from guardian.engine.decision import DeployInfo
from guardian.errors import SinkError
from guardian.manual.records import ManualOutput
from guardian.manual.tokens import yaml_entry

# identity -> (roles, token)
PEOPLE: dict[str, tuple[list[str], str]] = {
    "alice": (["SRE"], "tok-alice-0123456789"),
    "bob": (["DevOps Lead"], "tok-bob-0123456789"),
    "carol": (["developer"], "tok-carol-0123456789"),
}


def token_of(who: str) -> str:
    """The test token of a person in ``PEOPLE``."""
    return PEOPLE[who][1]


def auth(who: str) -> dict[str, str]:
    """The Authorization header of a person in ``PEOPLE``."""
    return {"Authorization": f"Bearer {token_of(who)}"}


def write_tokens(path: Path, people: dict[str, tuple[list[str], str]] = PEOPLE) -> Path:
    """Write a tokens file holding the hashes of ``people``'s tokens."""
    lines = ["tokens:"] + [yaml_entry(i, roles, token) for i, (roles, token) in people.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_deploy(
    deploy_id: str = "d-1",
    service: str = "checkout",
    environment: str = "production",
    strategy: str = "canary",
    component: str = "application",
) -> DeployInfo:
    """A deploy to roll back."""
    return DeployInfo(
        deploy_id=deploy_id,
        service=service,
        environment=environment,
        version="2.4.1",
        previous_version="2.4.0",
        strategy=strategy,
        component=component,
        regions=("us-east",),
        started_at_ms=1_795_478_400_000,
    )


class Lookup:
    """A deploy lookup over a dict (service, environment) -> deploy."""

    def __init__(self, *deploys: DeployInfo) -> None:
        self.deploys = {(d.service, d.environment): d for d in deploys}

    def __call__(self, service: str, environment: str) -> DeployInfo | None:
        return self.deploys.get((service, environment))


class RecordingWriter:
    """An output writer that keeps what it was given; ``fail`` makes it refuse."""

    def __init__(self) -> None:
        self.outputs: list[ManualOutput] = []
        self.fail = False

    async def write(self, outputs: Sequence[ManualOutput]) -> None:
        """Record the outputs, or raise SinkError when ``fail`` is set."""
        if self.fail:
            raise SinkError("broker away")
        self.outputs.extend(outputs)


class Clock:
    """A settable millisecond clock."""

    def __init__(self, now_ms: int = 1_795_478_500_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

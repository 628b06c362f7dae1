"""``targets.yaml``: which Kubernetes workload runs a (service, environment, region).

Example::

    targets:
      - service: checkout
        environment: production
        region: us-east          # optional: unset matches every region
        context: prod-us-east    # kubeconfig context; unset = the current one
        namespace: shop
        kind: Deployment         # or Rollout (Argo Rollouts)
        name: checkout
        container: app           # optional: whose image tag is the version
        version_from: auto       # auto | image | label
        version_label: app.kubernetes.io/version

How the running version is read from the pod template (``version_from``):
``image`` is the tag of ``container``'s image (the first container when
unset); ``label`` is the pod template's ``version_label``; ``auto`` (the
default) is the label when the template carries it, else the image tag.

``load_targets`` raises ``TargetsError`` listing every problem as
``file:line:column: field.path: message`` (as rule files do), including two
entries for the same (service, environment, region).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from guardian.errors import ConfigError
from guardian.yamldoc import YamlProblem, YamlProblems, parse_located, position

Kind = Literal["Deployment", "Rollout"]
VersionFrom = Literal["auto", "image", "label"]
# A DNS-1123 name or label value: what namespaces, names and contexts look like.
Name = Annotated[
    str, Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
]
Label = Annotated[str, Field(min_length=1, max_length=256)]


class Target(BaseModel):
    """One workload the executor may patch, and how to read its version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: Label
    environment: Label
    region: Label | None = None
    context: Label | None = None
    namespace: Name
    kind: Kind
    name: Name
    container: Name | None = None
    version_from: VersionFrom = "auto"
    version_label: Label = "app.kubernetes.io/version"

    @property
    def ref(self) -> str:
        """``context/namespace/kind/name``, for logs and reports."""
        return f"{self.context or '(current)'}/{self.namespace}/{self.kind}/{self.name}"

    def matches(self, service: str, environment: str, region: str | None) -> bool:
        """True when this entry runs ``service`` in ``environment`` (and ``region``, if given)."""
        if self.service != service or self.environment != environment:
            return False
        return region is None or self.region is None or self.region == region


class TargetsFile(BaseModel):
    """The whole file: a list of targets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    targets: list[Target] = Field(default_factory=list)

    def for_command(self, service: str, environment: str, regions: Sequence[str]) -> list[Target]:
        """The targets a command for these regions acts on (every region's when none given)."""
        if not regions:
            return [t for t in self.targets if t.matches(service, environment, None)]
        found: list[Target] = []
        for region in regions:
            found.extend(
                t
                for t in self.targets
                if t.matches(service, environment, region) and t not in found
            )
        return found


class TargetsError(ConfigError):
    """``targets.yaml`` is invalid; ``problems`` says where."""

    def __init__(self, problems: Sequence[YamlProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = list(problems)


def parse_targets(text: str, filename: str) -> TargetsFile:
    """Validate ``targets.yaml`` text; raise ``TargetsError`` with every problem located."""
    try:
        parsed, root = parse_located(TargetsFile, text, filename)
    except YamlProblems as exc:
        raise TargetsError(exc.problems) from None
    seen: dict[tuple[str, str, str | None], int] = {}
    problems = []
    for index, target in enumerate(parsed.targets):
        key = (target.service, target.environment, target.region)
        if key in seen:
            line, column = position(root, ["targets", index])
            problems.append(
                YamlProblem(
                    filename,
                    line,
                    column,
                    f"targets[{index}]",
                    f"{target.service}/{target.environment}/{target.region or '*'} is already "
                    f"the target at targets[{seen[key]}]",
                )
            )
        else:
            seen[key] = index
    if problems:
        raise TargetsError(problems)
    return parsed


def load_targets(path: Path) -> TargetsFile:
    """Read and validate a ``targets.yaml``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetsError([YamlProblem(str(path), 1, 1, "(file)", str(exc))]) from None
    return parse_targets(text, str(path))

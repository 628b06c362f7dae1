"""Static checks of the container image recipe (there is no Docker engine to build it here)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|KEY|SECRET", re.IGNORECASE)


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction with its continuation lines joined."""

    stage: int
    keyword: str
    args: str


def _parse(text: str) -> list[Instruction]:
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword, args.strip()))
    return instructions


def _env_pairs(args: str) -> list[tuple[str, str]]:
    if "=" not in args.split(maxsplit=1)[0]:  # legacy form: ENV KEY value
        key, _, value = args.partition(" ")
        return [(key, value.strip())]
    return [
        (key, value.strip("\"'"))
        for key, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|\S*)", args)
    ]


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return _parse(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(instructions: list[Instruction]) -> list[Instruction]:
    last = max(item.stage for item in instructions)
    return [item for item in instructions if item.stage == last]


def test_build_is_multi_stage_with_exactly_tagged_slim_python(
    instructions: list[Instruction],
) -> None:
    """Every stage starts from an exactly tagged slim Python 3.11 image; the wheel builds apart."""
    bases = [item.args.split()[0] for item in instructions if item.keyword == "FROM"]
    assert len(bases) >= 2
    for base in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", base), base
    assert re.search(r"\bAS\s+build\b", instructions[0].args, re.IGNORECASE)


def test_runtime_installs_the_built_wheel(final: list[Instruction]) -> None:
    """The runtime stage pip-installs guardian from the wheels of the build stage, offline."""
    runs = [item.args for item in final if item.keyword == "RUN"]
    install = [run for run in runs if "pip install" in run]
    assert install, runs
    assert any("--no-index" in run and "from=build" in run for run in install)


def test_runs_as_a_numeric_non_root_user(final: list[Instruction]) -> None:
    """The last USER of the runtime stage is numeric and not root, so Kubernetes can enforce it."""
    users = [item.args for item in final if item.keyword == "USER"]
    assert users
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0


def test_healthcheck_asks_healthz_with_python(final: list[Instruction]) -> None:
    """HEALTHCHECK calls /healthz through Python's urllib because slim images have no curl."""
    checks = [item.args for item in final if item.keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    check = checks[0]
    assert "/healthz" in check
    assert "urllib" in check
    assert "curl" not in check
    command = json.loads(check[check.index("CMD") + 3 :].strip())
    assert command[:2] == ["python", "-c"]
    compile(command[2], "<healthcheck>", "exec")


def test_entrypoint_is_guardian_run(final: list[Instruction]) -> None:
    """The container runs `guardian run` in exec form, so SIGTERM reaches the daemon."""
    entrypoints = [json.loads(item.args) for item in final if item.keyword == "ENTRYPOINT"]
    commands = [json.loads(item.args) for item in final if item.keyword == "CMD"]
    assert entrypoints[-1] == ["guardian"]
    assert commands[-1] == ["run"]


def test_rules_come_from_a_mount_point(final: list[Instruction]) -> None:
    """GUARDIAN_RULES points at /etc/guardian/rules and the HTTP server listens beyond loopback."""
    env = dict(pair for item in final if item.keyword == "ENV" for pair in _env_pairs(item.args))
    assert env["GUARDIAN_RULES"] == "/etc/guardian/rules"
    assert env["GUARDIAN_HTTP"].startswith("0.0.0.0:")
    assert not any(item.keyword == "COPY" and "rules" in item.args for item in final)


def test_no_secret_is_baked_in(instructions: list[Instruction]) -> None:
    """No ENV or ARG whose name looks like a secret carries a value in any stage."""
    for item in instructions:
        if item.keyword not in {"ENV", "ARG"}:
            continue
        pairs = (
            _env_pairs(item.args)
            if item.keyword == "ENV"
            else [(item.args.partition("=")[0], item.args.partition("=")[2])]
        )
        for key, value in pairs:
            assert not (SECRET_NAME.search(key) and value), f"{item.keyword} {key} has a value"


def test_dockerignore_keeps_the_context_small_and_secret_free() -> None:
    """The build context leaves out venv, git, tests and secrets but keeps what the build copies."""
    ignored = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests", ".env", "*.pem", "*.key"} <= ignored
    assert not {"guardian", "pyproject.toml", "README.md"} & ignored


def test_parser_reads_continuations_and_secret_envs() -> None:
    """The little parser joins continued lines and sees a secret set through ENV."""
    parsed = _parse("FROM python:3.11.11-slim-bookworm\nENV A=1 \\\n    SLACK_TOKEN=xoxb\n")
    assert parsed[1] == Instruction(0, "ENV", "A=1  SLACK_TOKEN=xoxb")
    assert _env_pairs(parsed[1].args) == [("A", "1"), ("SLACK_TOKEN", "xoxb")]

"""The Node.js, Go and Java command verifiers, built once into ``.cache/verifiers``.

Each build runs only when its sources changed since the last one (a hash of
them is kept beside the output), so a session pays for ``npm ci``, ``go
build`` and ``mvn package`` once, and later runs start at once. The first
build may fetch packages from npm, the Go module proxy and Maven Central. A
missing toolchain skips that language with the reason, except under
``CI=true``, where it fails the run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.verifiers.samples import REPO

SOURCES = REPO / "verifiers"
BUILD = REPO / ".cache" / "verifiers"
BUILD_TIMEOUT_S = 280  # a first Maven build downloads its plugins


@dataclass(frozen=True)
class Verifier:
    """A built verifier: how to start it."""

    language: str
    argv: tuple[str, ...]

    def run(self, *args: str, stdin: bytes = b"", key: str | None = None) -> tuple[int, str]:
        """Run it with ``args`` (and JSON lines on stdin); its exit code and output."""
        env = {name: value for name, value in os.environ.items() if name != "GUARDIAN_SIGNING_KEY"}
        if key is not None:
            env["GUARDIAN_SIGNING_KEY"] = key
        done = subprocess.run(
            [*self.argv, *args], input=stdin, capture_output=True, env=env, timeout=60, check=False
        )
        return done.returncode, done.stdout.decode() + done.stderr.decode()


@dataclass(frozen=True)
class Recipe:
    """How one language's verifier is built."""

    tools: tuple[str, ...]
    sources: tuple[str, ...]  # globs under verifiers/<language>
    build: Callable[[Path, Path], None]  # (sources, output)
    argv: Callable[[Path], tuple[str, ...]]  # output → how to start it


# Where a toolchain sits when a non-login shell has not put it on PATH.
FALLBACKS = {"go": ("/usr/local/go/bin/go",)}


def find_tool(name: str) -> str | None:
    """The full path of a tool: on PATH, or at its usual install location."""
    found = shutil.which(name)
    if found is not None:
        return found
    return next((path for path in FALLBACKS.get(name, ()) if os.access(path, os.X_OK)), None)


def _tool(name: str) -> str:
    found = find_tool(name)
    assert found is not None, name  # build_verifier checked
    return found


def _run_build(argv: list[str], cwd: Path, **env: str) -> None:
    done = subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        env={**os.environ, **env},
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        output = (done.stdout.decode() + done.stderr.decode())[-4000:]
        pytest.fail(f"{' '.join(argv)} failed ({done.returncode}):\n{output}")


def _node(source: Path, out: Path) -> None:
    for name in ("package.json", "package-lock.json", "verify.js", "main.js"):
        shutil.copy(source / name, out / name)
    _run_build([_tool("npm"), "ci", "--no-audit", "--no-fund", "--ignore-scripts"], out)


def _go(source: Path, out: Path) -> None:
    # The toolchain on the machine, and the module versions go.sum pins.
    _run_build(
        [_tool("go"), "build", "-o", str(out / "verifier"), "."],
        source,
        GOFLAGS="-mod=readonly",
        GOTOOLCHAIN="local",
    )


def _java(source: Path, out: Path) -> None:
    _run_build([_tool("mvn"), "-q", "-B", "package", f"-Dverifier.build={out}"], source)


RECIPES = {
    "node": Recipe(
        ("node", "npm"),
        ("package*.json", "*.js"),
        _node,
        lambda out: (_tool("node"), str(out / "main.js")),
    ),
    "go": Recipe(
        ("go",),
        ("go.mod", "go.sum", "*.go"),
        _go,
        lambda out: (str(out / "verifier"),),
    ),
    "java": Recipe(
        ("java", "mvn"),
        ("pom.xml", "src/**/*.java"),
        _java,
        lambda out: (_tool("java"), "-jar", str(out / "verifier.jar")),
    ),
}


def _sources_hash(source: Path, globs: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for path in sorted({path for pattern in globs for path in source.glob(pattern)}):
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build_verifier(language: str) -> Verifier:
    """The built verifier for ``language``: skipped (failed under CI=true) without its tools."""
    recipe = RECIPES[language]
    missing = [tool for tool in recipe.tools if find_tool(tool) is None]
    if missing:
        why = f"the {language} verifier needs {', '.join(missing)} on PATH"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true runs every verifier, but {why}")
        pytest.skip(why)
    source, out = SOURCES / language, BUILD / language
    stamp = out / ".sources-sha256"
    wanted = _sources_hash(source, recipe.sources)
    out.mkdir(parents=True, exist_ok=True)
    if not stamp.exists() or stamp.read_text() != wanted:
        stamp.unlink(missing_ok=True)
        recipe.build(source, out)
        stamp.write_text(wanted)
    return Verifier(language, recipe.argv(out))


@pytest.fixture(scope="session", params=sorted(RECIPES))
def verifier(request: pytest.FixtureRequest) -> Verifier:
    """Each language's verifier in turn, built once per change of its sources."""
    language: str = request.param
    return build_verifier(language)

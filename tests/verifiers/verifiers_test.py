"""The Node.js, Go and Java verifiers agree with the guardian on what it signs.

Each verifier checks the committed vectors, then commands the guardian's code
builds now: the named kinds of trouble (integral and tiny floats, huge
numbers, non-ASCII and control characters, UTF-16 key order, nested
evidence), random ones from a fixed seed, and the same commands spelled the
way Python's ``json`` writes them. Every genuine one must pass, every
tampered one must fail. One process per language and case, so the JVM and
Node start a handful of times in all.
"""

from __future__ import annotations

import json
import os

import orjson
import pytest

from tests.verifiers.conftest import Verifier
from tests.verifiers.samples import (
    VECTORS_FILE,
    Command,
    automatic_command,
    genuine_commands,
    random_commands,
    tamperings,
)

pytestmark = pytest.mark.timeout(300)  # the first build of a session may fetch packages

FRESH_KEY = "fresh-kéy-🔑"
SEED = int(os.environ.get("GUARDIAN_VERIFIER_SEED", "8785"))


def _lines(commands: list[Command]) -> bytes:
    return b"".join(orjson.dumps(command) + b"\n" for command in commands)


def _fresh_commands() -> list[Command]:
    return list(genuine_commands(FRESH_KEY).values()) + random_commands(SEED, 150, FRESH_KEY)


def test_verifier_checks_the_vectors(verifier: Verifier) -> None:
    """The verifier computes each vector's canonical bytes and accepts exactly the genuine ones."""
    code, output = verifier.run("--vectors", str(VECTORS_FILE))
    assert code == 0, output
    names = [vector["name"] for vector in json.loads(VECTORS_FILE.read_text())["vectors"]]
    assert output.split() == [word for name in names for word in ("ok", name)]


def test_verifier_accepts_fresh_commands_in_any_json_spelling(verifier: Verifier) -> None:
    """Commands signed now verify, as the guardian writes them and as Python's json spells them."""
    commands = _fresh_commands()
    as_written = _lines(commands)
    respelled = b"".join(json.dumps(command).encode() + b"\n" for command in commands[:6])
    code, output = verifier.run(stdin=as_written + respelled, key=FRESH_KEY)
    assert code == 0, output
    assert output.count("ok ") == len(commands) + 6, output
    assert "BAD" not in output


def test_verifier_rejects_every_tampered_command(verifier: Verifier) -> None:
    """Each change to a signed command (field, number, text, nesting, key, algorithm) is refused."""
    commands = _fresh_commands()[:10]
    changes = tamperings(FRESH_KEY).values()
    tampered = [change(command) for command in commands for change in changes]
    code, output = verifier.run(stdin=_lines(tampered), key=FRESH_KEY)
    assert code == 1, output
    assert output.count("BAD") == len(tampered), output
    assert "ok " not in output


def test_verifier_refuses_to_run_without_a_key(verifier: Verifier) -> None:
    """Without GUARDIAN_SIGNING_KEY the verifier stops with a usage error, accepting nothing."""
    code, output = verifier.run(stdin=_lines(_fresh_commands()[:1]))
    assert code == 2
    assert "GUARDIAN_SIGNING_KEY" in output


def test_java_library_limit_on_subnormal_numbers(verifier: Verifier) -> None:
    """1e-320 verifies in Node.js and Go; Java's JCS 1.1 prints it too long (README says so)."""
    command = automatic_command(
        FRESH_KEY, reason="subnormal", evidence={"observed": 1e-320, "threshold": 5e-324}
    )
    code, output = verifier.run(stdin=_lines([command]), key=FRESH_KEY)
    assert (code, output.split()[0]) == ((1, "BAD") if verifier.language == "java" else (0, "ok"))

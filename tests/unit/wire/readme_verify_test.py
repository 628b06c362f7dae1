"""The README's verifier snippets are the files the suite runs, and the Python one works.

Each language's snippet in "Verifying commands" must be the exact text of its
file under ``verifiers/`` (Node.js, Go and Java run in ``tests/verifiers``);
the Python snippet is taken from the README itself and run here against the
vectors and commands built now.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.verifiers.samples import (
    KEY,
    VECTORS_FILE,
    genuine_commands,
    random_commands,
    tamperings,
)

REPO = Path(__file__).resolve().parents[3]
README = REPO / "README.md"
SNIPPETS = {
    "python": "verifiers/python/verify.py",
    "js": "verifiers/node/verify.js",
    "go": "verifiers/go/verify.go",
    "java": "verifiers/java/src/main/java/guardian/verifier/Verify.java",
}


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Verifying commands\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _blocks(fence: str) -> list[str]:
    return re.findall(rf"^```{fence}\n(.*?)^```$", _section(), re.S | re.M)


@pytest.mark.parametrize(("fence", "path"), sorted(SNIPPETS.items()))
def test_readme_snippet_is_the_file_the_suite_runs(fence: str, path: str) -> None:
    """The README shows each verifier file verbatim, so the documented code is the tested code."""
    assert _blocks(fence) == [(REPO / path).read_text(encoding="utf-8")], (
        f"README 'Verifying commands' must hold {path} verbatim in one ```{fence} block"
    )


def _snippet() -> dict[str, Any]:
    (code,) = _blocks("python")
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README's snippet
    return namespace


def test_python_snippet_matches_every_vector() -> None:
    """The snippet computes each vector's canonical bytes and accepts exactly the genuine ones."""
    snippet = _snippet()
    for vector in json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"]:
        command, key = vector["command"], vector["key"].encode()
        assert snippet["canonical"](command).decode() == vector["canonical"], vector["name"]
        assert snippet["verify"](command, key) is (vector["expect"] == "accept"), vector["name"]


def test_python_snippet_accepts_fresh_commands_and_rejects_tampered_ones() -> None:
    """Commands the guardian signs now pass the snippet; every tampering of them fails."""
    verify = _snippet()["verify"]
    commands = [*genuine_commands().values(), *random_commands(17, 40)]
    for command in commands:
        assert verify(command, KEY.encode()), command["command_id"]
        assert not verify(command, b"another key")
        for name, change in tamperings().items():
            assert not verify(change(command), KEY.encode()), name


def test_python_snippet_refuses_integers_outside_i_json() -> None:
    """A forged command with an integer JCS cannot represent is refused, not an exception."""
    verify = _snippet()["verify"]
    (command, *_) = genuine_commands().values()
    forged = {**command, "evidence": {**command["evidence"], "samples": 2**64}}
    assert not verify(forged, KEY.encode())

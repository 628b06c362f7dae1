"""``verifiers/vectors.json`` is what the current code produces, and the guardian agrees with it."""

from __future__ import annotations

import json

from guardian.wire.signing import canonical_json, check, sign
from tests.verifiers.samples import REFRESH, VECTORS_FILE, build_vectors, render

# Legacy-form commands: refused by a JCS verifier, accepted by the guardian
# itself so that commands already on the topic still check out.
LEGACY = {"legacy-json-dumps"}


def test_vectors_file_is_up_to_date() -> None:
    """Regenerating the vectors from the guardian's code gives the committed file byte for byte."""
    assert VECTORS_FILE.read_text(encoding="utf-8") == render(build_vectors()), (
        f"verifiers/vectors.json is stale; refresh it with: {REFRESH}"
    )


def test_vectors_cover_accept_and_reject() -> None:
    """The file holds genuine and tampered commands, each with its key, bytes and signature."""
    vectors = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"]
    expectations = {vector["expect"] for vector in vectors}
    assert expectations == {"accept", "reject"}
    assert len({vector["name"] for vector in vectors}) == len(vectors)
    for vector in vectors:
        assert {"key", "canonical", "expected_signature", "command"} <= vector.keys()


def test_guardian_verify_agrees_with_every_vector() -> None:
    """The guardian computes each vector's bytes and signature and judges it as the file says."""
    for vector in json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"]:
        command, key = vector["command"], vector["key"].encode()
        assert canonical_json(command).decode() == vector["canonical"], vector["name"]
        assert sign(command, key) == vector["expected_signature"], vector["name"]
        genuine = vector["expect"] == "accept"
        assert check(command, key).ok is (genuine or vector["name"] in LEGACY), vector["name"]
        assert check(command, key, accept_legacy=False).ok is genuine, vector["name"]

"""Command signatures: the hmac-sha256+jcs scheme, the legacy form, and what is refused."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

import pytest

from guardian.wire.signing import (
    LEGACY,
    SIGNATURE_ALG,
    Problem,
    SigningError,
    canonical_json,
    check,
    legacy_canonical_json,
    sign,
    verify,
)

RECORD: dict[str, Any] = {
    "command_id": "rb-1",
    "reason": "ошибка 5xx — café",
    "evidence": {"observed": 200.0, "threshold": 1e-05, "z": [1, 2.5]},
}


def _legacy_signed(record: dict[str, Any], key: bytes) -> dict[str, Any]:
    digest = hmac.new(key, legacy_canonical_json(record), hashlib.sha256).hexdigest()
    return {**record, "signature": digest}


def test_signature_names_its_scheme() -> None:
    """A signature is the scheme name, a colon and 64 lowercase hex digits."""
    assert re.fullmatch(r"hmac-sha256\+jcs:[0-9a-f]{64}", sign(RECORD, b"k"))
    assert SIGNATURE_ALG == "hmac-sha256+jcs"


def test_signature_round_trip_and_tamper_detection() -> None:
    """A signed record verifies with its key, and not after a change or with another key."""
    signed = {**RECORD, "signature": sign(RECORD, b"k")}
    assert check(signed, b"k").scheme == SIGNATURE_ALG
    assert verify(signed, b"k")
    assert not verify(signed, b"other")
    assert check({**signed, "command_id": "rb-2"}, b"k").problem is Problem.MISMATCH
    assert check(RECORD, b"k").problem is Problem.NO_SIGNATURE
    assert check({**RECORD, "signature": None}, b"k").problem is Problem.NO_SIGNATURE


def test_canonical_json_is_rfc_8785() -> None:
    """Numbers in ECMAScript form, keys by UTF-16 unit, raw UTF-8, no whitespace, no signature."""
    record = {"b": 200.0, "a": [1e-05, 1e-06, 1e21, -0.0], "\ue000": 1, "😀": "é", "signature": "x"}
    assert canonical_json(record) == (
        '{"a":[0.00001,0.000001,1e+21,0],"b":200,"😀":"é","\ue000":1}'.encode()
    )


def test_spelling_of_numbers_is_not_signed() -> None:
    """200.0 and 200 are one JSON number: a verifier whose parser gives ints still verifies."""
    signed = {**RECORD, "signature": sign(RECORD, b"k")}
    as_ints = {**signed, "evidence": {**RECORD["evidence"], "observed": 200}}
    assert verify(as_ints, b"k")


def test_legacy_signatures_still_verify_unless_refused() -> None:
    """A bare hex digest over json.dumps (commands already on the topic) verifies as legacy."""
    old = _legacy_signed(RECORD, b"k")
    outcome = check(old, b"k")
    assert (outcome.ok, outcome.scheme) == (True, LEGACY)
    assert check({**old, "command_id": "rb-2"}, b"k").problem is Problem.MISMATCH
    refused = check(old, b"k", accept_legacy=False)
    assert (refused.ok, refused.problem) == (False, Problem.LEGACY_REFUSED)


def test_stripping_the_scheme_does_not_make_a_legacy_signature() -> None:
    """The bare digest of a JCS signature fails the legacy check where the two forms differ."""
    digest = sign(RECORD, b"k").partition(":")[2]
    assert canonical_json(RECORD) != legacy_canonical_json(RECORD)
    assert not verify({**RECORD, "signature": digest}, b"k")


@pytest.mark.parametrize("alg", ["hmac-sha512+jcs", "HMAC-SHA256+JCS", ""])
def test_unknown_schemes_are_refused_by_name(alg: str) -> None:
    """Another scheme name is refused and reported as written, never guessed at."""
    digest = sign(RECORD, b"k").partition(":")[2]
    outcome = check({**RECORD, "signature": f"{alg}:{digest}"}, b"k")
    assert (outcome.ok, outcome.problem, outcome.alg) == (False, Problem.UNKNOWN_ALG, alg)


def test_garbled_signature_values_are_mismatches_not_errors() -> None:
    """Non-ASCII or truncated digests compare as bytes and fail cleanly."""
    for value in [f"{SIGNATURE_ALG}:é", f"{SIGNATURE_ALG}:", "é" * 64, f"{SIGNATURE_ALG}:ab:cd"]:
        assert check({**RECORD, "signature": value}, b"k").problem is Problem.MISMATCH


@pytest.mark.parametrize("value", [2**53, -(2**53), float("nan"), float("inf")])
def test_values_outside_i_json_cannot_be_signed_and_do_not_verify(value: float) -> None:
    """Integers beyond 2**53 - 1 and non-finite floats raise SigningError; verify refuses them."""
    record = {**RECORD, "evidence": {"observed": value}}
    with pytest.raises(SigningError):
        sign(record, b"k")
    forged = {**record, "signature": f"{SIGNATURE_ALG}:{'0' * 64}"}
    assert check(forged, b"k").problem is Problem.NOT_CANONICAL

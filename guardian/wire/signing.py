"""HMAC-SHA256 signatures of rollback commands over RFC 8785 canonical JSON.

Scheme ``hmac-sha256+jcs`` (what the guardian signs with): ``signature`` is
``"hmac-sha256+jcs:" + hex(HMAC-SHA256(key, JCS(command without signature)))``.
The JSON Canonicalization Scheme fixes key order (UTF-16 code units), string
escapes and the form of numbers (ECMAScript's: ``200.0`` → ``200``, ``1e-05``
→ ``0.00001``), so an executor in any language with a JCS library computes the
same bytes from the command it parsed (``verifiers/`` holds Node.js, Go and
Java ones, and the test vectors they check).

The algorithm is named inside the signature value rather than in a field of
its own: a verifier that predates it compares the whole value with its hex
digest and refuses every new command at once, instead of accepting most and
failing on the few whose numbers Python and JCS print differently.

Legacy scheme: a bare hex signature (no ``alg:`` prefix) is HMAC-SHA256 over
Python's ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``, what guardians before the switch wrote. ``verify``
still accepts it so commands already on the topic check out, unless told
``accept_legacy=False``. An unknown prefix is refused, never guessed at.

Limits: JCS covers I-JSON only. An integer beyond ±(2**53 - 1) or a
non-finite float cannot be signed (``SigningError``); a command carrying one is
refused by ``verify``. Commands are signed as they are written (non-finite
floats already ``null``), see ``guardian.actions.commands``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Literal

import rfc8785

SIGNATURE_ALG: Final = "hmac-sha256+jcs"
LEGACY: Final = "legacy"

Scheme = Literal["hmac-sha256+jcs", "legacy"]


class SigningError(ValueError):
    """A record holds a value RFC 8785 cannot canonicalize (huge integer, NaN, infinity)."""


class Problem(StrEnum):
    """Why a signature does not verify, worded for reports."""

    NO_SIGNATURE = "no signature"
    UNKNOWN_ALG = "unknown signature algorithm"
    LEGACY_REFUSED = "legacy signature refused"
    NOT_CANONICAL = "not canonicalizable"
    MISMATCH = "signature mismatch"


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of checking one record: which scheme it names and, if bad, why."""

    ok: bool
    scheme: Scheme | None = None
    problem: Problem | None = None
    alg: str | None = None  # the algorithm the signature names, as written


def _unsigned(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key != "signature"}


def canonical_json(record: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of the record without ``signature``: what ``hmac-sha256+jcs`` signs."""
    try:
        return rfc8785.dumps(_unsigned(record))
    except rfc8785.CanonicalizationError as exc:
        raise SigningError(f"cannot canonicalize command: {exc}") from exc


def legacy_canonical_json(record: dict[str, Any]) -> bytes:
    """The legacy signed bytes: ``json.dumps`` with sorted keys, no whitespace, UTF-8."""
    text = json.dumps(_unsigned(record), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


def _digest(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).hexdigest().encode()


def sign(record: dict[str, Any], key: bytes) -> str:
    """``hmac-sha256+jcs:`` and the hex HMAC-SHA256 of the record's canonical JSON."""
    return f"{SIGNATURE_ALG}:{_digest(key, canonical_json(record)).decode()}"


def check(record: dict[str, Any], key: bytes, *, accept_legacy: bool = True) -> Verification:
    """Verify the record's signature with ``key`` (constant-time) and say why it fails."""
    signature = record.get("signature")
    if not isinstance(signature, str) or not signature:
        return Verification(ok=False, problem=Problem.NO_SIGNATURE)
    alg, separator, digest = signature.partition(":")
    if not separator:
        if not accept_legacy:
            return Verification(ok=False, scheme=LEGACY, problem=Problem.LEGACY_REFUSED)
        expected = _digest(key, legacy_canonical_json(record))
        ok = hmac.compare_digest(expected, signature.encode())
        return Verification(ok=ok, scheme=LEGACY, problem=None if ok else Problem.MISMATCH)
    if alg != SIGNATURE_ALG:
        return Verification(ok=False, problem=Problem.UNKNOWN_ALG, alg=alg)
    try:
        expected = _digest(key, canonical_json(record))
    except SigningError:
        return Verification(ok=False, scheme=SIGNATURE_ALG, problem=Problem.NOT_CANONICAL, alg=alg)
    ok = hmac.compare_digest(expected, digest.encode())
    return Verification(
        ok=ok, scheme=SIGNATURE_ALG, problem=None if ok else Problem.MISMATCH, alg=alg
    )


def verify(record: dict[str, Any], key: bytes, *, accept_legacy: bool = True) -> bool:
    """True when the record carries a signature that matches ``key``."""
    return check(record, key, accept_legacy=accept_legacy).ok

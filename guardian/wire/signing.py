"""Canonical JSON and HMAC-SHA256 signatures for rollback commands.

The signature covers the canonical JSON of the command without its
``signature`` field: keys sorted, no whitespace, UTF-8. An executor verifies
with a few lines of standard-library Python (see README, "Verifying commands").
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any


def canonical_json(record: dict[str, Any]) -> bytes:
    """Sorted keys, no whitespace, ``signature`` left out: the bytes that get signed.

    Built with the standard library's ``json`` (not orjson) on purpose: an
    executor reproduces exactly these bytes with ``json.dumps`` alone, number
    formatting included.
    """
    unsigned = {key: value for key, value in record.items() if key != "signature"}
    text = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


def sign(record: dict[str, Any], key: bytes) -> str:
    """Hex HMAC-SHA256 of the record's canonical JSON."""
    return hmac.new(key, canonical_json(record), hashlib.sha256).hexdigest()


def verify(record: dict[str, Any], key: bytes) -> bool:
    """True when the record carries a signature that matches ``key`` (constant-time)."""
    signature = record.get("signature")
    if not isinstance(signature, str):
        return False
    return hmac.compare_digest(signature, sign(record, key))

# pip install rfc8785
import hashlib
import hmac

import rfc8785

PREFIX = "hmac-sha256+jcs:"


def canonical(command: dict) -> bytes:
    """RFC 8785 bytes of the command without its signature: what the guardian signs."""
    return rfc8785.dumps({k: v for k, v in command.items() if k != "signature"})


def verify(command: dict, key: bytes) -> bool:
    """True when the parsed command carries a valid hmac-sha256+jcs signature for key."""
    signature = command.get("signature")
    if not isinstance(signature, str) or not signature.startswith(PREFIX):
        return False
    try:
        expected = hmac.new(key, canonical(command), hashlib.sha256).hexdigest()
    except rfc8785.CanonicalizationError:  # outside I-JSON, e.g. an integer over 2**53
        return False
    return hmac.compare_digest(expected.encode(), signature[len(PREFIX) :].encode())

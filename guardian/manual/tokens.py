"""API tokens: who is calling, and with which roles, from a YAML file of hashes.

The file holds only SHA-256 hashes of tokens, never tokens::

    tokens:
      - id: alice
        roles: [SRE]
        sha256: "<hex sha256 of the token>"

Lookups hash the presented token and compare it against *every* entry with
``hmac.compare_digest``, so timing reveals neither which entry matched nor how
many characters did. ``TokenFile`` re-reads the file when its modification
time or size changes (checked at most once per ``check_interval_s``); a file
that became invalid keeps the previous tokens in force and is reported, like
a rule reload.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from guardian.errors import ConfigError

log = structlog.get_logger(__name__)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
TOKEN_PREFIX = "gdn_"  # noqa: S105 - a public prefix, not a secret


@dataclass(frozen=True, slots=True)
class Identity:
    """A caller the tokens file knows: an id and its roles."""

    id: str
    roles: frozenset[str]


@dataclass(frozen=True, slots=True)
class TokenEntry:
    """One line of the tokens file."""

    identity: Identity
    sha256: str


def hash_token(token: str) -> str:
    """Hex SHA-256 of a token, the form the tokens file stores."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits), prefixed so secret scanners recognise it."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def yaml_entry(identity_id: str, roles: list[str], token: str) -> str:
    """The YAML list item to add under ``tokens:`` for a token."""
    role_list = ", ".join(_yaml_scalar(role) for role in roles)
    return (
        f"  - id: {_yaml_scalar(identity_id)}\n"
        f"    roles: [{role_list}]\n"
        f'    sha256: "{hash_token(token)}"'
    )


def _yaml_scalar(value: str) -> str:
    return (
        value if re.fullmatch(r"[A-Za-z0-9_.@-]+", value) else '"' + value.replace('"', '\\"') + '"'
    )


def parse_tokens(data: Any, source: str = "tokens file") -> tuple[TokenEntry, ...]:
    """Validate the loaded YAML of a tokens file; ConfigError with the entry at fault."""
    if data is None:
        return ()
    if not isinstance(data, dict) or not isinstance(data.get("tokens") or [], list):
        raise ConfigError(f"{source}: expected a mapping with a 'tokens' list")
    entries: list[TokenEntry] = []
    seen_ids: set[str] = set()
    for index, item in enumerate(data.get("tokens") or []):
        where = f"{source}: tokens[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a mapping with id, roles, sha256")
        ident, roles, digest = item.get("id"), item.get("roles"), item.get("sha256")
        if not isinstance(ident, str) or not ident:
            raise ConfigError(f"{where}.id: expected a non-empty string")
        if ident in seen_ids:
            raise ConfigError(f"{where}.id: {ident!r} appears twice")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ConfigError(f"{where}.roles: expected a list of role names")
        if not isinstance(digest, str) or not _HEX64.match(digest.lower()):
            raise ConfigError(f"{where}.sha256: expected 64 hex characters (sha256 of the token)")
        seen_ids.add(ident)
        entries.append(TokenEntry(Identity(ident, frozenset(roles)), digest.lower()))
    return tuple(entries)


def load_tokens(path: Path) -> tuple[TokenEntry, ...]:
    """Read and validate a tokens file."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read tokens file {path}: {exc.strerror}") from None
    try:
        data = YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise ConfigError(f"tokens file {path} is not valid YAML: {exc}") from None
    return parse_tokens(data, str(path))


class TokenTable:
    """A fixed set of token entries; ``identify`` is constant-time over the whole table."""

    def __init__(self, entries: tuple[TokenEntry, ...] = ()) -> None:
        self.entries = entries

    def identify(self, token: str) -> Identity | None:
        """The identity holding this token, or None."""
        presented = hash_token(token)
        found: Identity | None = None
        for entry in self.entries:
            # No early exit: every entry is compared whatever matched.
            if hmac.compare_digest(presented, entry.sha256):
                found = entry.identity
        return found


class TokenFile:
    """A tokens file that re-reads itself when it changes on disk."""

    def __init__(
        self,
        path: Path | None,
        *,
        check_interval_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._interval = check_interval_s
        self._monotonic = monotonic
        self._table = TokenTable()
        self._stamp: tuple[int, int] | None = None
        self._checked_at: float | None = None
        self.last_error: str | None = None

    def load(self) -> None:
        """Read the file now; ConfigError when it is invalid (used at start-up)."""
        if self._path is None:
            return
        stamp = self._stat()
        self._table = TokenTable(load_tokens(self._path))
        self._stamp = stamp
        self._checked_at = self._monotonic()
        log.info("tokens_loaded", path=str(self._path), tokens=len(self._table.entries))

    def identify(self, token: str) -> Identity | None:
        """The identity for a token under the file's current content."""
        self._maybe_reload()
        return self._table.identify(token)

    def _stat(self) -> tuple[int, int] | None:
        assert self._path is not None  # noqa: S101 - callers check
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _maybe_reload(self) -> None:
        if self._path is None:
            return
        now = self._monotonic()
        if self._checked_at is not None and now - self._checked_at < self._interval:
            return
        self._checked_at = now
        stamp = self._stat()
        if stamp == self._stamp:
            return
        try:
            self._table = TokenTable(load_tokens(self._path))
        except ConfigError as exc:
            # Keep serving the previous tokens: a typo must not lock every operator out.
            self.last_error = str(exc)
            log.error("tokens_reload_failed", path=str(self._path), error=str(exc))
        else:
            self.last_error = None
            log.info("tokens_reloaded", path=str(self._path), tokens=len(self._table.entries))
        self._stamp = stamp

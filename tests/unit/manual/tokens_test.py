"""Tokens file: parsing, constant-time lookup, reload on change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from guardian.errors import ConfigError
from guardian.manual.tokens import (
    TOKEN_PREFIX,
    Identity,
    TokenFile,
    TokenTable,
    hash_token,
    load_tokens,
    new_token,
    parse_tokens,
    yaml_entry,
)
from tests.support.manual import PEOPLE, token_of, write_tokens


def test_known_token_identifies_its_holder(tmp_path: Path) -> None:
    """A token whose hash is in the file maps to that identity and its roles."""
    table = TokenTable(load_tokens(write_tokens(tmp_path / "tokens.yaml")))
    assert table.identify(token_of("alice")) == Identity("alice", frozenset({"SRE"}))
    assert table.identify(token_of("bob")) == Identity("bob", frozenset({"DevOps Lead"}))


def test_unknown_token_identifies_nobody(tmp_path: Path) -> None:
    """A token not in the file, or the hash itself, identifies nobody."""
    table = TokenTable(load_tokens(write_tokens(tmp_path / "tokens.yaml")))
    assert table.identify("nope") is None
    assert table.identify(hash_token(token_of("alice"))) is None


def test_new_token_and_yaml_entry_round_trip() -> None:
    """A fresh token's YAML line parses back to an entry that recognises the token."""
    token = new_token()
    assert token.startswith(TOKEN_PREFIX)
    assert new_token() != token
    from ruamel.yaml import YAML

    text = "tokens:\n" + yaml_entry("dana smith", ["DevOps Lead", "SRE"], token)
    entries = parse_tokens(YAML(typ="safe").load(text))
    assert TokenTable(entries).identify(token) == Identity(
        "dana smith", frozenset({"DevOps Lead", "SRE"})
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1], "expected a mapping"),
        ({"tokens": "x"}, "expected a mapping"),
        ({"tokens": ["x"]}, r"tokens\[0\]: expected a mapping"),
        ({"tokens": [{"id": "", "roles": [], "sha256": "0" * 64}]}, r"tokens\[0\]\.id"),
        ({"tokens": [{"id": "a", "roles": "SRE", "sha256": "0" * 64}]}, r"tokens\[0\]\.roles"),
        ({"tokens": [{"id": "a", "roles": ["SRE"], "sha256": "abc"}]}, r"tokens\[0\]\.sha256"),
        (
            {
                "tokens": [
                    {"id": "a", "roles": [], "sha256": "0" * 64},
                    {"id": "a", "roles": [], "sha256": "1" * 64},
                ]
            },
            "appears twice",
        ),
    ],
)
def test_invalid_entries_are_rejected_with_their_place(data: Any, message: str) -> None:
    """Each malformed tokens file is refused with the entry and field at fault."""
    with pytest.raises(ConfigError, match=message):
        parse_tokens(data)


def test_empty_file_holds_no_tokens() -> None:
    """An empty document or an empty list means no tokens."""
    assert parse_tokens(None) == ()
    assert parse_tokens({"tokens": None}) == ()


def test_unreadable_or_invalid_yaml_is_a_config_error(tmp_path: Path) -> None:
    """A missing file or broken YAML is reported as a ConfigError naming the file."""
    with pytest.raises(ConfigError, match="cannot read tokens file"):
        load_tokens(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tokens: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_tokens(bad)


def test_token_file_reloads_on_change_and_keeps_old_tokens_on_error(tmp_path: Path) -> None:
    """Edits are picked up after the check interval; a broken edit keeps the previous tokens."""
    path = write_tokens(tmp_path / "tokens.yaml", {"alice": PEOPLE["alice"]})
    ticks = [0.0]
    tokens = TokenFile(path, check_interval_s=1.0, monotonic=lambda: ticks[0])
    tokens.load()
    assert tokens.identify(token_of("alice")) is not None
    assert tokens.identify(token_of("bob")) is None

    write_tokens(path, {"bob": PEOPLE["bob"]})
    assert tokens.identify(token_of("alice")) is not None  # within the interval: not re-read
    ticks[0] = 2.0
    assert tokens.identify(token_of("bob")) is not None
    assert tokens.identify(token_of("alice")) is None

    path.write_text("tokens: [{id: x}]\n", encoding="utf-8")
    ticks[0] = 4.0
    assert tokens.identify(token_of("bob")) is not None
    assert tokens.last_error is not None

    path.unlink()
    ticks[0] = 6.0
    assert tokens.identify(token_of("bob")) is not None


def test_token_file_without_path_knows_nobody() -> None:
    """With no tokens file configured every token is unknown."""
    tokens = TokenFile(None)
    tokens.load()
    assert tokens.identify("anything") is None

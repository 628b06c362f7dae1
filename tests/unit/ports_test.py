"""free_port: below the ephemeral range, never twice, never a bound port."""

from __future__ import annotations

import itertools
import socket
from pathlib import Path

import pytest

from guardian import ports
from guardian.ports import free_port


def test_ports_are_below_the_ephemeral_range_and_distinct() -> None:
    low = ports._ephemeral_low()
    picked = [free_port() for _ in range(200)]
    assert len(set(picked)) == len(picked)
    assert all(low - 12000 <= port < low for port in picked)


def test_a_bound_port_is_skipped() -> None:
    picker = ports._PortPicker()
    first = picker.pick("127.0.0.1")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        # Bind the port the next picker would start from and check it is passed over.
        fresh = ports._PortPicker()
        fresh._cursor = itertools.cycle([first, first + 1, first + 2])
        holder.bind(("127.0.0.1", first))
        assert fresh.pick("127.0.0.1") != first


def test_unreadable_range_falls_back_to_the_linux_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(ports, "_EPHEMERAL_RANGE", tmp_path / "missing")
    assert ports._ephemeral_low() == 32768


def test_exhausted_range_falls_back_to_the_os(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_bindable", lambda host, port: False)
    port = ports._PortPicker().pick("127.0.0.1")
    assert port >= ports._ephemeral_low()


def test_a_range_starting_low_leaves_only_the_os_choice(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    wide = tmp_path / "ip_local_port_range"
    wide.write_text("1024\t65535\n")
    monkeypatch.setattr(ports, "_EPHEMERAL_RANGE", wide)
    port = ports._PortPicker().pick("127.0.0.1")
    assert 1024 <= port <= 65535

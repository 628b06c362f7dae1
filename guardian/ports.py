"""Free TCP ports for local listeners, chosen below the kernel's ephemeral range.

A port the OS hands out for ``bind(0)`` comes from the ephemeral range, the
same range outgoing connections draw their source ports from. A listener
that starts later on such a port (the embedded broker, or a test server
coming back after an outage) can find it taken by some client's socket —
or a client retrying a dead local port can connect to itself (TCP
simultaneous open) — and the listener fails to bind. Ports below the
ephemeral range are never given to outgoing connections, so picking there
closes both races. Within one process no port is handed out twice.
"""

from __future__ import annotations

import itertools
import secrets
import socket
import threading
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_EPHEMERAL_LOW = 32768
_SPAN = 12000
_MIN_PORT = 10000


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL_LOW


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _os_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class _PortPicker:
    """Walks the ports below the ephemeral range from a random start, skipping used ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handed_out: set[int] = set()
        self._cursor: itertools.cycle[int] | None = None

    def _candidates(self) -> itertools.cycle[int]:
        high = _ephemeral_low()
        ports = list(range(max(_MIN_PORT, high - _SPAN), high))
        if not ports:  # the ephemeral range starts too low to leave room below it
            return itertools.cycle([])
        # A random start, so concurrent processes rarely walk the same ports.
        start = secrets.randbelow(len(ports))
        return itertools.cycle(ports[start:] + ports[:start])

    def pick(self, host: str) -> int:
        with self._lock:
            if self._cursor is None:
                self._cursor = self._candidates()
            for port in itertools.islice(self._cursor, _SPAN):
                if port not in self._handed_out and _bindable(host, port):
                    self._handed_out.add(port)
                    return port
        return _os_port(host)  # every low port taken: fall back to the OS's choice


_picker = _PortPicker()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody is bound to now, outside the ephemeral range, new to this process."""
    return _picker.pick(host)

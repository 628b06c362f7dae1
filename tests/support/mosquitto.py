"""A Mosquitto broker the test owns: started on a free port, killed and restarted at will."""

from __future__ import annotations

import getpass
import socket
import subprocess
import time
from pathlib import Path

from guardian.ports import free_port

MOSQUITTO = "/usr/sbin/mosquitto"


class Mosquitto:
    """``mosquitto -c CONF`` on 127.0.0.1:PORT; ``kill`` and ``start`` keep the same port."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(
            self.config_text("allow_anonymous true\n"),
            encoding="utf-8",
        )
        self._process: subprocess.Popen[bytes] | None = None

    def config_text(self, extra: str) -> str:
        """Configuration lines of this broker plus ``extra``.

        ``user`` keeps the current user: started as root, Mosquitto would
        otherwise switch to ``mosquitto`` and lose access to the test's files.
        """
        return (
            f"listener {self.port} 127.0.0.1\npersistence false\nuser {getpass.getuser()}\n{extra}"
        )

    @property
    def url(self) -> str:
        """The ``mqtt://`` URL of this broker."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the broker and wait until it accepts connections."""
        self._process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto on port {self.port} did not start")

    def kill(self) -> None:
        """Kill the broker at once (SIGKILL), as a crash would."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait(timeout=10)

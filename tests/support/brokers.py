"""The two kinds of broker the suite runs on: Apache Kafka (through ``scripts/kafka``) and the
embedded Tansu broker.

``GUARDIAN_TEST_BROKERS`` picks the kinds (``kafka,embedded`` by default).
Without Java or Maven the Kafka half is skipped with one line on the
terminal, except under ``CI=true``, where a missing Java is a failure.
``GUARDIAN_TEST_BOOTSTRAP_SERVERS`` points the Kafka half at a cluster
someone else runs instead of starting one.

``KafkaCluster`` is also what a test uses that must kill, stop or restart
its own brokers: it drives the same script, on a directory of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "kafka"
KAFKA = "kafka"
EMBEDDED = "embedded"


@dataclass(frozen=True)
class TestBroker:
    """The broker a test runs on."""

    __test__ = False  # not a test class, whatever its name says

    kind: str
    bootstrap: str

    @property
    def is_kafka(self) -> bool:
        """Apache Kafka (not the embedded broker): its minimum session timeout is 6 s."""
        return self.kind == KAFKA


def kafka_missing() -> str | None:
    """Why Apache Kafka cannot run here, or None when it can."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not found"
    return None


def broker_kinds() -> tuple[list[str], str | None]:
    """The kinds to run on, and a one-line notice when the Kafka half is left out."""
    wanted = [k.strip() for k in os.environ.get("GUARDIAN_TEST_BROKERS", "").split(",") if k]
    kinds = wanted or [KAFKA, EMBEDDED]
    unknown = set(kinds) - {KAFKA, EMBEDDED}
    if unknown:
        raise RuntimeError(f"GUARDIAN_TEST_BROKERS: unknown kinds {sorted(unknown)}")
    if KAFKA in kinds and not os.environ.get("GUARDIAN_TEST_BOOTSTRAP_SERVERS"):
        why = kafka_missing()
        if why is not None:
            if os.environ.get("CI") == "true":
                raise RuntimeError(f"CI=true needs Apache Kafka for the suite, but {why}")
            kinds = [k for k in kinds if k != KAFKA]
            return kinds, f"Apache Kafka half skipped: {why} (install Java 17+ and Maven)"
    return kinds, None


_STARTED: set[Path] = set()


def kill_started_clusters() -> None:
    """SIGKILL every node of every cluster this process started (the watchdog's last resort).

    The nodes run in sessions of their own, not as children of the test run,
    so killing the run's children would leave them behind.
    """
    for directory in list(_STARTED):
        record = directory / "cluster.json"
        with contextlib.suppress(OSError, ValueError):
            for node in json.loads(record.read_text())["nodes"]:
                if node.get("pid"):
                    with contextlib.suppress(OSError):
                        os.kill(int(node["pid"]), signal.SIGKILL)


class KafkaCluster:
    """An Apache Kafka cluster in ``directory``, started and stopped through ``scripts/kafka``."""

    def __init__(self, directory: Path, brokers: int = 1, *, secure: bool = False) -> None:
        self.directory = directory
        self.brokers = brokers
        self.secure = secure
        self.start_output = ""

    def start(self) -> str:
        """Start (or resume) every node; return the bootstrap servers."""
        command = [str(SCRIPT), "start", "--brokers", str(self.brokers)]
        command += ["--dir", str(self.directory)]
        if self.secure:
            command.append("--secure")
        _STARTED.add(self.directory)
        done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
        self.start_output = done.stdout
        last = done.stdout.strip().splitlines()[-1]
        if not last.startswith("bootstrap="):
            raise RuntimeError(f"scripts/kafka start printed {last!r} last")
        return last.removeprefix("bootstrap=")

    def stop(self, *, purge: bool = False) -> None:
        """Stop every node (SIGTERM, as an orchestrator does)."""
        command = [str(SCRIPT), "stop", "--dir", str(self.directory)]
        if purge:
            command.append("--purge")
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def _record(self) -> dict[str, object]:
        record: dict[str, object] = json.loads((self.directory / "cluster.json").read_text())
        return record

    def nodes(self) -> list[dict[str, int | None]]:
        """The recorded nodes: node_id, port, pid, and the secure ports when there are any."""
        nodes: list[dict[str, int | None]] = self._record()["nodes"]  # type: ignore[assignment]
        return nodes

    def pid(self, node_id: int) -> int:
        """Process id of a running node."""
        for node in self.nodes():
            if node["node_id"] == node_id and node["pid"] is not None:
                return int(node["pid"])
        raise LookupError(f"kafka node {node_id} is not running")

    def node_of_port(self, port: int) -> int:
        """The node id listening on a plaintext port."""
        for node in self.nodes():
            if node["port"] == port:
                return int(node["node_id"])  # type: ignore[arg-type]
        raise LookupError(f"no kafka node on port {port}")

    def kill(self, node_id: int) -> None:
        """SIGKILL one node, as a crash would, and wait until it is gone."""
        pid = self.pid(node_id)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}").exists() else ""
            if ") Z" in stat:
                break
            time.sleep(0.05)

    def freeze(self, node_id: int) -> None:
        """SIGSTOP one node: it holds its connections but answers nothing."""
        os.kill(self.pid(node_id), signal.SIGSTOP)

    def thaw(self, node_id: int) -> None:
        """SIGCONT a frozen node."""
        os.kill(self.pid(node_id), signal.SIGCONT)

    @property
    def tls_dir(self) -> Path:
        """Certificates of a secure cluster: ca.pem, client.pem, client.key."""
        return self.directory / "tls"

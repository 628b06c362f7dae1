"""A local Apache Kafka cluster in KRaft mode, for the test suite, benchmarks and operators.

``scripts/kafka start [--brokers N] [--dir DIR] [--secure]`` resolves a pinned
Apache Kafka (``org.apache.kafka:kafka_2.13`` and what it needs) through Maven
into ``.cache/kafka/<version>/`` (git-ignored, downloaded once), formats one
log directory per node and starts each node as broker+controller on free
loopback ports, in a session of its own so a terminal's Ctrl-C does not reach
it. It returns once every node answers a Metadata request listing all
brokers; its last line on stdout is exactly ``bootstrap=HOST:PORT[,...]``.

``start`` is idempotent: a node of DIR's cluster that is running is left
alone, one that is not (stopped, killed) is started again with its ports and
data, so ``start`` after a SIGKILL is a broker restart. ``stop`` ends the
processes recorded in ``DIR/cluster.json`` (by pid, checked against the
command line, never by name) and keeps the data; ``stop --purge`` removes DIR.

``--secure`` adds two listeners per node with certificates made here with
``openssl``: SASL_SSL with SCRAM-SHA-512 (user and password in cluster.json)
and SSL with client certificates required (mutual TLS).

Test-friendly settings only change timing, never semantics: no initial
rebalance delay, fewer offsets-topic partitions, a quicker log cleaner,
fewer threads. Replication of the internal topics is ``min(3, N)``.
Standard library only, so it runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from guardian.ports import free_port  # noqa: E402 - the repo root is put on the path first

KAFKA_VERSION = "4.1.1"
SLF4J_BINDING = "org.apache.logging.log4j:log4j-slf4j-impl:2.24.3"
# Pinned, so a fresh machine resolves Kafka with the same plugin as this one.
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"
CACHE = REPO / ".cache" / "kafka"
DEFAULT_DIR = CACHE / "cluster"
SCRAM_USER = "guardian"
SCRAM_PASSWORD = "guardian-scram-secret"  # noqa: S105 - a local test cluster's credential
READY_TIMEOUT_S = 120.0


@dataclass
class Node:
    """One broker+controller process and its ports."""

    node_id: int
    port: int
    controller_port: int
    sasl_ssl_port: int | None = None
    ssl_port: int | None = None
    pid: int | None = None


@dataclass
class Cluster:
    """What ``start`` recorded in DIR/cluster.json."""

    version: str
    cluster_id: str
    secure: bool
    heap: str
    nodes: list[Node] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def listeners(self, attribute: str) -> str:
        return ",".join(f"127.0.0.1:{getattr(n, attribute)}" for n in self.nodes)


def _say(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------- the jars


def _pom(dependencies: list[str]) -> str:
    entries = []
    for coordinate in dependencies:
        group, artifact, version = coordinate.split(":")
        entries.append(
            f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{version}</version></dependency>"
        )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>local.guardian</groupId><artifactId>kafka-runtime</artifactId>"
        f"<version>1</version><dependencies>{''.join(entries)}</dependencies></project>"
    )


def kafka_jars(version: str = KAFKA_VERSION) -> list[Path]:
    """The runtime jars of Kafka ``version``, resolved through Maven once into the cache."""
    lib = CACHE / version / "lib"
    done = CACHE / version / ".complete"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two starts at once download once
        if not done.exists():
            if shutil.which("mvn") is None:
                raise SystemExit("scripts/kafka: Maven (mvn) is needed to fetch Apache Kafka")
            shutil.rmtree(lib, ignore_errors=True)
            with tempfile.TemporaryDirectory() as work:
                pom = Path(work) / "pom.xml"
                pom.write_text(_pom([f"org.apache.kafka:kafka_2.13:{version}", SLF4J_BINDING]))
                _say(f"fetching Apache Kafka {version} through Maven into {lib}")
                subprocess.run(
                    [
                        "mvn", "-q", "-B", "-f", str(pom), DEPENDENCY_PLUGIN,
                        f"-DoutputDirectory={lib}", "-DincludeScope=runtime",
                    ],
                    check=True,
                    stdout=sys.stderr,
                )  # fmt: skip
            done.write_text(version)
    return sorted(lib.glob("*.jar"))


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise SystemExit("scripts/kafka: Java 17 or newer is needed to run Apache Kafka")
    return java


def _classpath(version: str) -> str:
    return os.pathsep.join(str(jar) for jar in kafka_jars(version))


# --------------------------------------------------------------- certificates


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(tls: Path) -> None:
    """A CA, a broker certificate for 127.0.0.1/localhost and a client certificate."""
    tls.mkdir(parents=True, exist_ok=True)
    days = "3650"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", "-days", days, "-subj", "/CN=guardian-test-ca", cwd=tls)  # fmt: skip
    (tls / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, subject in (("broker", "/CN=localhost"), ("client", "/CN=guardian-client")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                 f"{name}.csr", "-subj", subject, cwd=tls)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", days,
                 "-extfile", "san.ext", cwd=tls)  # fmt: skip
        # Kafka's PEM key store wants a PKCS#8 key followed by the certificate.
        _openssl("pkcs8", "-topk8", "-nocrypt", "-in", f"{name}.key", "-out",
                 f"{name}.pk8", cwd=tls)  # fmt: skip
        keystore = (tls / f"{name}.pk8").read_text() + (tls / f"{name}.pem").read_text()
        (tls / f"{name}-keystore.pem").write_text(keystore)


# --------------------------------------------------------------- configuration


def _properties(cluster: Cluster, node: Node, root: Path) -> str:
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in cluster.nodes)
    replicas = min(3, len(cluster.nodes))
    listeners = [
        f"PLAINTEXT://127.0.0.1:{node.port}",
        f"CONTROLLER://127.0.0.1:{node.controller_port}",
    ]
    protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
    lines = [
        "process.roles=broker,controller",
        f"node.id={node.node_id}",
        f"controller.quorum.voters={voters}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        f"log.dirs={root / f'node-{node.node_id}' / 'data'}",
        f"offsets.topic.replication.factor={replicas}",
        f"transaction.state.log.replication.factor={replicas}",
        f"transaction.state.log.min.isr={min(2, replicas)}",
        f"default.replication.factor={replicas}",
        # Timing only: a test group forms at once, the offsets topic is created
        # quickly, compaction runs within seconds of a segment closing.
        "group.initial.rebalance.delay.ms=0",
        "offsets.topic.num.partitions=10",
        "log.cleaner.backoff.ms=1000",
        "num.network.threads=2",
        "num.io.threads=2",
        "background.threads=2",
        "num.recovery.threads.per.data.dir=1",
        "log.cleaner.threads=1",
    ]
    if cluster.secure:
        tls = root / "tls"
        listeners += [
            f"SASL_SSL://127.0.0.1:{node.sasl_ssl_port}",
            f"MTLS://127.0.0.1:{node.ssl_port}",
        ]
        protocols += ["SASL_SSL:SASL_SSL", "MTLS:SSL"]
        lines += [
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={tls / 'broker-keystore.pem'}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={tls / 'ca.pem'}",
            "listener.name.mtls.ssl.client.auth=required",
            "listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        ]
    lines.insert(0, f"listeners={','.join(listeners)}")
    advertised = [item for item in listeners if not item.startswith("CONTROLLER")]
    lines.insert(1, f"advertised.listeners={','.join(advertised)}")
    lines.insert(2, f"listener.security.protocol.map={','.join(protocols)}")
    return "\n".join(lines) + "\n"


def _log4j(log_file: Path) -> str:
    return (
        "status = warn\n"
        "appender.file.type = File\n"
        "appender.file.name = file\n"
        f"appender.file.fileName = {log_file}\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.file.ref = file\n"
    )


def _node_dir(root: Path, node: Node) -> Path:
    return root / f"node-{node.node_id}"


def _format(cluster: Cluster, node: Node, root: Path, classpath: str) -> None:
    config = _node_dir(root, node) / "server.properties"
    command = [
        _java(), "-cp", classpath,
        f"-Dlog4j2.configurationFile={_node_dir(root, node) / 'log4j2.properties'}",
        "kafka.tools.StorageTool", "format", "-t", cluster.cluster_id, "-c", str(config),
    ]  # fmt: skip
    if cluster.secure:
        command += ["--add-scram", f"SCRAM-SHA-512=[name={SCRAM_USER},password={SCRAM_PASSWORD}]"]
    subprocess.run(command, check=True, capture_output=True)


def _launch(cluster: Cluster, node: Node, root: Path, classpath: str) -> subprocess.Popen[bytes]:
    home = _node_dir(root, node)
    out = (home / "stdout.log").open("ab")
    process = subprocess.Popen(
        [
            _java(), f"-Xmx{cluster.heap}", "-Xms64m", "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
            "-cp", classpath, "kafka.Kafka", str(home / "server.properties"),
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # a terminal's Ctrl-C is for the guardian, not the broker
        cwd=home,
    )  # fmt: skip
    out.close()
    node.pid = process.pid
    return process


# --------------------------------------------------------------- liveness


def _alive(node: Node, root: Path) -> bool:
    """The recorded pid runs this node's configuration (a reused pid is not ours)."""
    if node.pid is None:
        return False
    try:
        cmdline = Path(f"/proc/{node.pid}/cmdline").read_bytes()
    except OSError:
        return False
    if str(_node_dir(root, node) / "server.properties").encode() not in cmdline:
        return False
    state = Path(f"/proc/{node.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def metadata_brokers(port: int, timeout_s: float = 2.0) -> list[int] | None:
    """Node ids a broker lists in a Metadata v4 answer, or None if it does not answer."""
    body = struct.pack(">hhi", 3, 4, 1) + _string("guardian-kafka-script")
    body += struct.pack(">i?", -1, False)  # all topics, do not create any
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = _read_exactly(sock, 4)
            payload = _read_exactly(sock, struct.unpack(">i", header)[0])
    except OSError:
        return None
    offset = 8  # correlation id, throttle time
    (count,) = struct.unpack_from(">i", payload, offset)
    offset += 4
    ids = []
    for _ in range(count):
        (node_id,) = struct.unpack_from(">i", payload, offset)
        offset += 4
        (host_len,) = struct.unpack_from(">h", payload, offset)
        offset += 2 + host_len + 4
        (rack_len,) = struct.unpack_from(">h", payload, offset)
        offset += 2 + max(rack_len, 0)
        ids.append(node_id)
    return ids


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def _wait_ready(cluster: Cluster, root: Path, launched: dict[int, subprocess.Popen[bytes]]) -> None:
    """Until every node lists every broker; a node launched here is watched by its handle
    (right after the fork its command line is still this script's)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    wanted = sorted(n.node_id for n in cluster.nodes)
    pending = list(cluster.nodes)
    while pending:
        for node in list(pending):
            process = launched.get(node.node_id)
            running = process.poll() is None if process is not None else _alive(node, root)
            if not running:
                log = _node_dir(root, node) / "server.log"
                tail = log.read_text(errors="replace").splitlines()[-20:] if log.exists() else []
                raise SystemExit(f"kafka node {node.node_id} exited:\n" + "\n".join(tail))
            answer = metadata_brokers(node.port)
            if answer is not None and sorted(answer) == wanted:
                pending.remove(node)
        if time.monotonic() > deadline:
            raise SystemExit(f"kafka nodes {[n.node_id for n in pending]} not ready in time")
        time.sleep(0.2)


def rss_mb(pids: list[int]) -> float:
    """Resident memory of these processes together, in MB."""
    total_kb = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


# --------------------------------------------------------------- commands


def _load(root: Path) -> Cluster | None:
    path = root / "cluster.json"
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    nodes = [Node(**node) for node in raw.pop("nodes")]
    return Cluster(**raw, nodes=nodes)


def _save(cluster: Cluster, root: Path) -> None:
    path = root / "cluster.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(cluster), indent=2))
    temporary.replace(path)


def _new_cluster(brokers: int, secure: bool, heap: str) -> Cluster:
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    nodes = [
        Node(
            node_id=index + 1,
            port=free_port(),
            controller_port=free_port(),
            sasl_ssl_port=free_port() if secure else None,
            ssl_port=free_port() if secure else None,
        )
        for index in range(brokers)
    ]
    return Cluster(KAFKA_VERSION, cluster_id, secure, heap, nodes)


def start(root: Path, brokers: int, secure: bool, heap: str) -> Cluster:
    """Start DIR's cluster (creating it if new) and wait until every node answers."""
    began = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cluster = _load(root)
        if cluster is not None and (len(cluster.nodes) != brokers or cluster.secure != secure):
            if any(_alive(node, root) for node in cluster.nodes):
                raise SystemExit(
                    f"scripts/kafka: {root} runs a different cluster "
                    f"({len(cluster.nodes)} brokers, secure={cluster.secure}); stop it first"
                )
            cluster = None
        fresh = cluster is None
        if cluster is None:
            for stale in root.glob("node-*"):
                shutil.rmtree(stale)
            cluster = _new_cluster(brokers, secure, heap)
        classpath = _classpath(cluster.version)
        if fresh:
            if secure:
                make_certificates(root / "tls")
            for node in cluster.nodes:
                home = _node_dir(root, node)
                home.mkdir(parents=True)
                (home / "server.properties").write_text(_properties(cluster, node, root))
                (home / "log4j2.properties").write_text(_log4j(home / "server.log"))
                _format(cluster, node, root, classpath)
        started = [node for node in cluster.nodes if not _alive(node, root)]
        launched = {node.node_id: _launch(cluster, node, root, classpath) for node in started}
        _save(cluster, root)
        _wait_ready(cluster, root, launched)
    pids = [node.pid for node in cluster.nodes if node.pid is not None]
    _say(
        f"kafka {cluster.version}: {len(cluster.nodes)} node(s), {len(started)} started, "
        f"ready in {time.monotonic() - began:.1f} s, RSS {rss_mb(pids):.0f} MB, dir {root}"
    )
    if cluster.secure:
        _say(f"sasl_ssl={cluster.listeners('sasl_ssl_port')} user={SCRAM_USER}")
        _say(f"ssl={cluster.listeners('ssl_port')} tls={root / 'tls'}")
    _say(f"bootstrap={cluster.bootstrap}")
    return cluster


def stop(root: Path, purge: bool, node_ids: list[int] | None = None) -> None:
    """SIGTERM the recorded nodes (SIGKILL after 30 s); keep the data unless ``purge``."""
    cluster = _load(root)
    if cluster is None:
        _say(f"no cluster recorded in {root}")
    else:
        chosen = [n for n in cluster.nodes if node_ids is None or n.node_id in node_ids]
        running = [n for n in chosen if _alive(n, root)]
        for node in running:
            os.kill(node.pid, signal.SIGTERM)  # type: ignore[arg-type]  # alive implies a pid
        deadline = time.monotonic() + 30
        while any(_alive(n, root) for n in running) and time.monotonic() < deadline:
            time.sleep(0.1)
        for node in running:
            if _alive(node, root):
                os.kill(node.pid, signal.SIGKILL)  # type: ignore[arg-type]
        for node in chosen:
            node.pid = None
        _save(cluster, root)
        _say(f"stopped {len(running)} kafka node(s) in {root}")
    if purge:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/kafka", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start_cmd = commands.add_parser("start", help="start (or resume) a KRaft cluster")
    start_cmd.add_argument("--brokers", type=int, default=1)
    start_cmd.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    start_cmd.add_argument("--secure", action="store_true", help="add SASL_SSL and mTLS listeners")
    start_cmd.add_argument("--heap", default="512m", help="JVM heap per node")
    stop_cmd = commands.add_parser("stop", help="stop what start started")
    stop_cmd.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    stop_cmd.add_argument("--node", type=int, action="append", help="only this node id")
    stop_cmd.add_argument("--purge", action="store_true", help="also delete DIR")
    commands.add_parser("fetch", help="only download Kafka into the cache")
    args = parser.parse_args(argv)
    if args.command == "start":
        start(args.dir.resolve(), args.brokers, args.secure, args.heap)
    elif args.command == "stop":
        stop(args.dir.resolve(), args.purge, args.node)
    else:
        _say(f"{len(kafka_jars())} jars in {CACHE / KAFKA_VERSION / 'lib'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

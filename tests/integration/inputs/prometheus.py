"""A real Prometheus server for tests, scraping test exporters and remote-writing to the guardian.

Debian's ``prometheus`` package (``/usr/bin/prometheus``; ``.ci/run`` installs
it). Without it a test is skipped, except under ``CI=true``, where that is a
failure. The configuration is the README's ``remote_write`` recipe with
short intervals so a test takes seconds, not minutes.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from guardian.ports import free_port

PROMETHEUS = Path("/usr/bin/prometheus")


def require_prometheus() -> None:
    """Skip without a Prometheus binary; fail instead under CI=true."""
    if PROMETHEUS.exists():
        return
    message = f"{PROMETHEUS} is missing (Debian package 'prometheus', installed by .ci/run)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class Exporter:
    """An instrumented service as Prometheus sees it: request counter and latency histogram."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests", "Requests served", ["code"], registry=self.registry
        )
        self.duration = Histogram(
            "http_request_duration_seconds", "Request latency", registry=self.registry
        )
        self.port = free_port()
        self._server: WSGIServer | None = None

    def start(self) -> None:
        """Serve /metrics on 127.0.0.1:port."""
        self._server, _thread = start_http_server(self.port, "127.0.0.1", registry=self.registry)

    def serve(self, requests: int, *, error_rate: float, latency_s: float) -> None:
        """Count ``requests`` requests, ``error_rate`` of them 500s, each taking ``latency_s``."""
        errors = round(requests * error_rate)
        self.requests.labels("500").inc(errors)
        self.requests.labels("200").inc(requests - errors)
        for _ in range(requests):
            self.duration.observe(latency_s)

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass(frozen=True)
class Target:
    """A scrape target and the labels Prometheus attaches to it."""

    port: int
    labels: Mapping[str, str]


def prometheus_config(targets: Sequence[Target], write_port: int, token: str) -> str:
    """The README recipe's remote_write block with 1 s scrapes and short deadlines."""
    static = "\n".join(
        f"      - targets: ['127.0.0.1:{t.port}']\n        labels: {dict(t.labels)!r}"
        for t in targets
    )
    return f"""\
global:
  scrape_interval: 1s
  scrape_timeout: 800ms
  external_labels:
    environment: production
scrape_configs:
  - job_name: services
    static_configs:
{static}
remote_write:
  - url: http://127.0.0.1:{write_port}/api/v1/write
    authorization:
      credentials: {token}
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
      retry_on_http_429: true
    metadata_config:
      send: false
"""


@contextmanager
def prometheus(config: str, workdir: Path) -> Iterator[int]:
    """Run Prometheus with ``config``; yield its port once it answers /-/ready."""
    require_prometheus()
    port = free_port()
    (workdir / "prometheus.yml").write_text(config)
    with (workdir / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise AssertionError(
                        "prometheus exited:\n" + (workdir / "prometheus.log").read_text()[-3000:]
                    )
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError("prometheus never became ready") from None
                    time.sleep(0.1)
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def prometheus_log(workdir: Path) -> str:
    """The end of Prometheus' log, to explain a failure."""
    path = workdir / "prometheus.log"
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""

"""``guardian demo``: watch the guardian roll back a bad canary, with nothing installed.

Starts the embedded broker and the whole daemon in this process, plays the
story of ``guardian.demo.scenario`` into Kafka with event time compressed
(``--speed`` seconds of event time per wall second), and shows live what the
guardian sees and does: traffic per cohort, the decision with its evidence
(from the audit topic), the signed rollback command (from the command topic,
signature verified) and the notifications that would go out (from the
notification outbox). Every event produced is also written as JSONL to
``--events-out`` so ``guardian replay`` can play it again.

Limits: the embedded broker keeps everything in memory and the signing key is
a fixed demo key; nothing is sent to Slack or email. On a non-terminal the
live view is replaced by one line per step and a final summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from guardian.config.settings import Settings
    from guardian.daemon.app import Daemon
    from guardian.demo.scenario import Tick

DEMO_SIGNING_KEY = b"guardian-demo-key (not a secret)"
READY_TIMEOUT_S = 30.0
VERDICT_TIMEOUT_S = 20.0
SETTLE_S = 1.0
_EVIDENCE_SHOWN = ("observed", "threshold", "baseline", "window_s", "samples", "cohort")


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the CLI."""
    app.command("demo")(demo)


def demo(
    speed: float = typer.Option(
        10.0, "--speed", min=0.1, help="Seconds of event time played per wall-clock second."
    ),
    events_out: Path = typer.Option(
        Path("guardian-demo-events.jsonl"), "--events-out", help="Where to write the events."
    ),
    rules: Path | None = typer.Option(
        None, "--rules", help="Rule file or directory (default: ./rules, then the repo's)."
    ),
) -> None:
    """Play a healthy canary and a bad release, and watch the guardian roll the bad one back."""
    from rich.console import Console

    from guardian.errors import GuardianError
    from guardian.logs import configure_logging

    configure_logging("error")  # the live view tells the story; logs would interleave with it
    console = Console()
    try:
        outcome = asyncio.run(run_demo(speed, events_out, find_rules(rules), console))
    except GuardianError as exc:
        typer.echo(f"guardian: demo failed: {exc}", err=True)
        raise typer.Exit(1) from None
    console.print(
        f"\n{outcome.events_written} events written to {events_out}; replay them with:\n"
        f"  guardian replay {events_out} --format table",
        soft_wrap=True,  # a wrapped command line cannot be copied
    )
    if len(outcome.commands) != 1:
        raise typer.Exit(1)


def find_rules(given: Path | None) -> Path:
    """The rules to use: the given path, ./rules, or the rules/ of the source checkout."""
    from guardian.errors import ConfigError

    candidates = [given] if given is not None else [Path("rules"), _repo_rules()]
    for path in candidates:
        if path.exists():
            return path
    shown = ", ".join(str(p) for p in candidates)
    raise ConfigError(f"no rules found (looked at {shown}); pass --rules DIR")


def _repo_rules() -> Path:
    import guardian

    return Path(guardian.__file__).resolve().parent.parent / "rules"


@dataclass
class DemoOutcome:
    """What the demo saw on the output topics (tests assert on it)."""

    events_written: int = 0
    commands: list[dict[str, Any]] = field(default_factory=list)
    signatures_ok: list[bool] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Traffic:
    version: str
    requests_per_s: float
    error_rate: float
    p95_ms: float


class DemoView:
    """The state shown on screen, and its rich rendering."""

    def __init__(self) -> None:
        self.phase = "starting the embedded broker and the guardian"
        self.event_time = "-"
        self.traffic: dict[str, _Traffic] = {}
        self.outcome = DemoOutcome()
        self.command_seen = asyncio.Event()

    def on_tick(self, tick: Tick) -> None:
        """Show one second of traffic."""
        from guardian.wire.records import format_time

        self.phase, self.event_time = tick.phase, format_time(tick.at_ms)
        self.traffic = {}
        for event in tick.events:
            if event["kind"] != "metric":
                continue
            values = event["values"]
            self.traffic[event["cohort"]] = _Traffic(
                event["version"],
                values["requests"],
                values["errors"] / values["requests"],
                values["latency_p95_ms"],
            )

    def on_output(self, role: str, record: dict[str, Any]) -> str | None:
        """Take one record from an output topic; return a one-line summary if it matters."""
        from guardian.wire.signing import verify

        outcome = self.outcome
        if role == "command" and record.get("kind") == "rollback_command":
            ok = verify(record, DEMO_SIGNING_KEY)
            outcome.commands.append(record)
            outcome.signatures_ok.append(ok)
            self.command_seen.set()
            mark = "✓ signature verified" if ok else "✗ BAD SIGNATURE"
            return f"command {record['command_id']} for {record['deploy_id']}: {mark}"
        if role == "audit" and isinstance(record.get("details", {}).get("decision"), dict):
            decision = record["details"]["decision"]
            outcome.decisions.append(decision)
            return f"decision {decision['rule']} → {decision['action']}: {decision['reason']}"
        if role == "notification" and record.get("kind") == "notification":
            outcome.notifications.append(record)
            return f"notification {_subject(record)}"
        return None

    def render(self) -> RenderableType:
        """Everything on one screen."""
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table

        traffic = Table("cohort", "version", "requests/s", "error rate", "p95", expand=True)
        for cohort, t in sorted(self.traffic.items(), reverse=True):
            style = "bold red" if t.error_rate > 0.05 else "green"
            traffic.add_row(
                cohort,
                t.version,
                f"{t.requests_per_s:.0f}",
                f"[{style}]{t.error_rate:.2%}[/]",
                f"{t.p95_ms:.0f} ms",
            )
        title = f"[b]{self.phase}[/]   event time {self.event_time}"
        parts: list[RenderableType] = [Panel(traffic, title=title, border_style="blue")]
        decisions = Table("rule", "action", "reason", "evidence", expand=True)
        for d in self.outcome.decisions:
            evidence = ", ".join(
                f"{k}={v}" for k, v in d.get("evidence", {}).items() if k in _EVIDENCE_SHOWN
            )
            decisions.add_row(d["rule"], d["action"], d["reason"], evidence)
        parts.append(Panel(decisions, title="decisions (guardian.audit)", border_style="yellow"))
        for command, ok in zip(self.outcome.commands, self.outcome.signatures_ok, strict=True):
            parts.append(Panel(_command_text(command, ok), title="rollback command", style="red"))
        if self.outcome.notifications:
            lines = "\n".join(_subject(n) for n in self.outcome.notifications)
            parts.append(Panel(lines, title="notifications that would go out"))
        return Group(*parts)


def _command_text(command: dict[str, Any], ok: bool) -> str:
    mark = "[green]✓ signature verified[/]" if ok else "[red]✗ signature does not verify[/]"
    return (
        f"{command['command_id']}  {command['service']} {command['environment']}  "
        f"{command['from_version']} → {command['to_version']}\n"
        f"procedure {command['procedure']}, traffic {command['traffic']}\n"
        f"rule {command['rule']}: {command['reason']}\n{mark}"
    )


def _subject(entry: dict[str, Any]) -> str:
    decision = entry.get("decision") or {}
    deploy = entry.get("deploy") or {}
    tag = str(decision.get("action", "notify")).upper()
    versions = ""
    if deploy:
        versions = f" {deploy.get('version')} → {deploy.get('previous_version')}"
    return (
        f"[{tag}] {decision.get('service')} {decision.get('environment')}{versions}: "
        f"{decision.get('reason')}"
    )


def demo_settings(bootstrap: str, rules: Path) -> Settings:
    """Daemon settings for the demo: the embedded broker, short sessions, the demo key."""
    from pydantic import SecretStr

    from guardian.config.settings import Settings
    from guardian.ports import free_port

    return Settings(
        bootstrap_servers=bootstrap,
        group_id=f"guardian-demo-{uuid.uuid4().hex[:8]}",
        rules=rules,
        http=f"127.0.0.1:{free_port()}",
        signing_key=SecretStr(DEMO_SIGNING_KEY.decode()),
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
        fetch_max_wait_ms=20,
        topic_partitions=1,
    )


async def run_demo(speed: float, events_out: Path, rules: Path, console: Console) -> DemoOutcome:
    """Run the whole demo; return what was seen on the output topics."""
    from rich.live import Live

    from guardian.daemon.app import Daemon
    from guardian.kafka.embedded import EmbeddedBroker

    view = DemoView()
    live = console.is_terminal
    with Live(view.render(), console=console, auto_refresh=False) if live else _no_live() as screen:

        def show(line: str | None) -> None:
            if screen is not None:
                screen.update(view.render(), refresh=True)
            elif line:
                console.print(line, markup=False, highlight=False, soft_wrap=True)

        async with EmbeddedBroker() as broker:
            settings = demo_settings(broker.bootstrap_servers, rules)
            daemon = Daemon(settings)
            task = asyncio.create_task(daemon.run(), name="guardian")
            try:
                await _wait_ready(daemon, task)
                show("guardian ready on the embedded broker")
                watcher = asyncio.create_task(_watch(settings, view, show), name="watch")
                try:
                    await _play(settings, speed, events_out, view, show)
                    await _await_verdict(view, task)
                finally:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watcher
            finally:
                daemon.request_stop()
                await asyncio.wait_for(task, timeout=20)
    if not live:
        console.print(view.render())
    return view.outcome


@contextlib.contextmanager
def _no_live() -> Iterator[None]:
    yield None


async def _wait_ready(daemon: Daemon, task: asyncio.Task[None]) -> None:
    from guardian.errors import SourceError

    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_S
    while not daemon.readiness.ready:
        if task.done():
            task.result()  # surfaces the daemon's crash
        if loop.time() > deadline:
            raise SourceError(f"the guardian did not become ready: {daemon.readiness.failing()}")
        await asyncio.sleep(0.05)


async def _play(
    settings: Settings, speed: float, events_out: Path, view: DemoView, show: Any
) -> None:
    """Produce the story to Kafka, one tick per 1/speed wall seconds, and write the JSONL file."""
    import orjson

    from guardian.demo.scenario import Script, scenario
    from guardian.kafka.sink import KafkaSink

    assert settings.bootstrap_servers  # noqa: S101 - demo_settings always sets it
    script = Script()
    now_ms = time.time_ns() // 1_000_000
    ticks = scenario(now_ms - script.total_s * 1000, script)  # event time ends about now
    loop = asyncio.get_running_loop()
    started = loop.time()
    phase = ""
    with events_out.open("wb") as out:
        async with KafkaSink(settings, settings.bootstrap_servers) as sink:
            for tick in ticks:
                for event in tick.events:
                    topic = (
                        settings.metric_topic
                        if event["kind"] == "metric"
                        else settings.deploy_topic
                    )
                    value = orjson.dumps(event)
                    await sink.send(topic, value, key=event["service"].encode())
                    out.write(value + b"\n")
                    view.outcome.events_written += 1
                await sink.flush()
                view.on_tick(tick)
                show(f"phase: {tick.phase}" if tick.phase != phase else None)
                phase = tick.phase
                await asyncio.sleep(max(0.0, started + (tick.second + 1) / speed - loop.time()))


async def _watch(settings: Settings, view: DemoView, show: Any) -> None:
    """Read the command, audit and notification topics into the view."""
    import orjson

    from guardian.kafka.source import KafkaSource

    roles = {
        settings.command_topic: "command",
        settings.audit_topic: "audit",
        settings.notification_topic: "notification",
    }
    viewer = settings.model_copy(update={"group_id": f"{settings.group_id}-viewer"})
    assert settings.bootstrap_servers  # noqa: S101 - demo_settings always sets it
    async with KafkaSource(viewer, settings.bootstrap_servers, list(roles)) as source:
        while True:
            for record in await source.getmany(timeout_ms=100):
                with contextlib.suppress(orjson.JSONDecodeError):
                    show(view.on_output(roles[record.topic], orjson.loads(record.value)))


async def _await_verdict(view: DemoView, daemon_task: asyncio.Task[None]) -> None:
    """Wait for the rollback command (or the deadline), then a little longer to catch a second."""
    seen = asyncio.create_task(view.command_seen.wait())
    try:
        await asyncio.wait(
            {seen, daemon_task}, timeout=VERDICT_TIMEOUT_S, return_when="FIRST_COMPLETED"
        )
    finally:
        seen.cancel()
    await asyncio.sleep(SETTLE_S)

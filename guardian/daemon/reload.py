"""Rule hot reload: on a file change or SIGHUP, load the rules again and swap them in.

A reload that fails keeps the rules in force, logs every problem with file
and line, writes an audit record and counts the failure; a reload that
succeeds is audited too. Window and deploy state survive the swap.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import structlog
from watchfiles import awatch

from guardian.daemon.pipeline import RecordSink
from guardian.engine import Engine, load_rules
from guardian.errors import ConfigError
from guardian.metrics import GuardianMetrics
from guardian.wire.records import AuditRecord, format_time

log = structlog.get_logger(__name__)


class RuleReloader:
    """Watches the rule path and swaps new rules into the engine when they are valid."""

    def __init__(
        self,
        path: Path,
        engine: Engine,
        sink: RecordSink,
        audit_topic: str,
        metrics: GuardianMetrics,
        *,
        watch: bool = True,
    ) -> None:
        self._path = path
        self._engine = engine
        self._sink = sink
        self._audit_topic = audit_topic
        self._metrics = metrics
        self._watch = watch
        self._trigger = asyncio.Event()

    def request(self) -> None:
        """Ask for a reload (SIGHUP)."""
        self._trigger.set()

    async def run(self) -> None:
        """Reload whenever asked or whenever a rule file changes, until cancelled."""
        watcher = asyncio.create_task(self._watch_files()) if self._watch else None
        try:
            while True:
                await self._trigger.wait()
                self._trigger.clear()
                await self.reload()
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _watch_files(self) -> None:
        async for _changes in awatch(self._path, debounce=300, recursive=True):
            self._trigger.set()

    async def reload(self) -> bool:
        """Load and swap in the rules; True when the new rules are in force."""
        now_ms = time.time_ns() // 1_000_000
        try:
            rules = load_rules(self._path)
        except ConfigError as exc:
            problems = str(exc)
            self._metrics.rule_reloads.labels("failed").inc()
            log.error("rules_reload_failed", path=str(self._path), problems=problems)
            await self._audit("rules_reload_failed", now_ms, {"problems": problems})
            return False
        self._engine.swap_rules(rules)
        self._metrics.rule_reloads.labels("success").inc()
        self._metrics.rules_loaded.set(len(rules))
        log.info("rules_reloaded", path=str(self._path), rules=len(rules))
        await self._audit("rules_reloaded", now_ms, {"rules": len(rules)})
        return True

    async def _audit(self, event: str, now_ms: int, details: dict[str, object]) -> None:
        record = AuditRecord(
            audit_id="au-" + hashlib.sha256(f"{event}|{now_ms}".encode()).hexdigest()[:24],
            at=format_time(now_ms),
            event=event,
            actor="guardian",
            details={"path": str(self._path), **details},
        )
        await self._sink.send(self._audit_topic, record.model_dump_json().encode(), key=b"rules")
        await self._sink.flush()

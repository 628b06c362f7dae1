"""A local HTTP server that answers like the Slack Web API and incoming webhooks, for tests.

``FakeSlack`` checks ``Authorization: Bearer <token>``, records every
``chat.postMessage`` (channel, text, blocks, thread_ts) and answers
``{"ok": true, "ts": ...}``; it can answer ``ok: false`` errors per channel
(``channel_not_found``), 429 with ``Retry-After`` while ``rate_limited`` is
set, and be stopped and started again on the same port (an outage). Point
``slack_sdk`` at it with ``slack_base_url=fake.base_url``.
"""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp import web

from guardian.ports import free_port


class FakeSlack:
    """Slack's Web API shape on 127.0.0.1: token check, JSON, errors, rate limits."""

    def __init__(self, token: str = "xoxb-test-token", retry_after_s: int = 1) -> None:  # noqa: S107 - a test token
        self.token = token
        self.retry_after_s = retry_after_s
        self.port = free_port()
        self.messages: list[dict[str, Any]] = []
        self.webhook_messages: dict[str, list[dict[str, Any]]] = {}
        self.channel_errors: dict[str, str] = {}
        self.rate_limited = False
        self.rejected = 0
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        """What to pass as ``slack_base_url``."""
        return f"http://127.0.0.1:{self.port}/api/"

    def webhook_url(self, name: str) -> str:
        """An incoming-webhook URL served by this fake."""
        return f"http://127.0.0.1:{self.port}/services/{name}"

    def in_channel(self, channel: str) -> list[dict[str, Any]]:
        """Messages posted to one channel, in order."""
        return [m for m in self.messages if m["channel"] == channel]

    async def start(self) -> None:
        """Listen (again) on this fake's port."""
        app = web.Application()
        app.router.add_post("/api/chat.postMessage", self._post_message)
        app.router.add_post("/services/{name}", self._webhook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        """Stop listening (an outage); safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def _limited(self) -> web.Response | None:
        if not self.rate_limited:
            return None
        self.rejected += 1
        return web.json_response(
            {"ok": False, "error": "ratelimited"},
            status=429,
            headers={"Retry-After": str(self.retry_after_s)},
        )

    async def _post_message(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        limited = self._limited()
        if limited is not None:
            return limited
        if request.content_type == "application/json":
            body: dict[str, Any] = await request.json()
        else:
            body = dict(await request.post())
        channel = str(body.get("channel", ""))
        if channel in self.channel_errors:
            return web.json_response({"ok": False, "error": self.channel_errors[channel]})
        ts = f"1700000000.{next(self._ts):06d}"
        self.messages.append(
            {
                "channel": channel,
                "text": body.get("text"),
                "blocks": body.get("blocks"),
                "thread_ts": body.get("thread_ts"),
                "ts": ts,
            }
        )
        return web.json_response({"ok": True, "channel": channel, "ts": ts})

    async def _webhook(self, request: web.Request) -> web.Response:
        limited = self._limited()
        if limited is not None:
            return limited
        name = request.match_info["name"]
        if name in self.channel_errors:
            return web.Response(status=404, text=self.channel_errors[name])
        self.webhook_messages.setdefault(name, []).append(await request.json())
        return web.Response(text="ok")

"""A webhook receiver on 127.0.0.1 for the tests and bench/outbox_outage.py: checks each
delivery's signature, records it, and answers as told (ok, 500, hang); it can be stopped
(connections refused) and started again on the same port."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from callcenterd.notify.webhooks import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, verify
from tests.conftest import free_port

Mode = Literal["ok", "fail", "hang", "gone"]


@dataclass
class Received:
    delivery_id: str
    event_type: str
    body: dict[str, Any]
    signed: bool
    content_type: str
    mode: str  # the receiver's mode when it arrived


@dataclass
class WebhookReceiver:
    secret: str = ""
    mode: Mode = "ok"
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)  # every request, any answer
    accepted: list[Received] = field(default_factory=list)  # those answered 2xx
    hang_seconds: float = 30.0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        item = Received(
            request.headers.get(DELIVERY_HEADER, ""),
            request.headers.get(EVENT_HEADER, ""),
            json.loads(raw),
            verify(self.secret, request.headers.get(SIGNATURE_HEADER, ""), raw),
            request.content_type,
            self.mode,
        )
        self.received.append(item)
        if self.mode == "hang":
            # Processed late, after the sender gave up waiting: what makes duplicates.
            await asyncio.sleep(self.hang_seconds)
        if self.mode == "fail":
            return web.Response(status=500, text="receiver down")
        if self.mode == "gone":
            return web.Response(status=410, text="no such hook")
        if not item.signed:
            return web.Response(status=401, text="bad signature")
        self.accepted.append(item)
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        """Closed port: connections are refused until start()."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def accepted_ids(self) -> Counter[str]:
        return Counter(item.delivery_id for item in self.accepted)

    def duplicates(self) -> int:
        return sum(count - 1 for count in self.accepted_ids().values())

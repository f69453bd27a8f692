"""A real HTTP server on 127.0.0.1 standing in for an SMS gateway: it records every request
as received and answers as the test says (a status and body, or a delay past any timeout)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    content_type: str
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.raw.decode(), keep_blank_values=True))


@dataclass
class FakeGateway:
    status: int = 200
    body: str = '{"status": "ok", "id": "m-1"}'
    content_type: str = "application/json"
    delay: float = 0.0  # seconds before answering (a timeout test makes it long)
    received: list[Received] = field(default_factory=list)
    answers: list[tuple[int, str]] = field(default_factory=list)  # first ones, then `status`

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(
            Received(
                request.method,
                request.path,
                dict(request.headers),
                dict(request.query),
                request.content_type,
                await request.read(),
            )
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        status, body = self.answers.pop(0) if self.answers else (self.status, self.body)
        return web.Response(status=status, text=body, content_type=self.content_type)

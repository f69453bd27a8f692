"""A test client for `/ws/events`: connect, authenticate, collect events (API and e2e tests).

async with events_socket(session, f"{base}/ws/events", token) as events:
    started = await events.next_event("call_started")
    assert started["data"]["caller_number"] == "100"
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import ClientWebSocketResponse, WSMsgType

Frame = dict[str, Any]
MIN_WAIT = 0.001  # seconds: the shortest read timeout


class Closed(Exception):
    """The server closed the socket (code and reason as it sent them)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed {code}: {reason}")
        self.code, self.reason = code, reason


class EventCollector:
    """Frames from one socket; `events` keeps every event frame received so far."""

    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[Frame] = []
        self.controls: list[Frame] = []  # auth_ok, pong, error, subscribed, resync_required
        self.close_reason = ""  # once the server closed the socket

    async def send(self, **message: Any) -> None:
        await self.ws.send_str(json.dumps(message))

    async def auth(self, token: str, **extra: Any) -> Frame:
        await self.send(type="auth", token=token, **extra)
        return await self.next_frame()

    async def next_frame(self, within: float = 5.0) -> Frame:
        # aiohttp reads a timeout of 0 as "none": a deadline just passed would wait forever.
        msg = await self.ws.receive(timeout=max(within, MIN_WAIT))
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            self.close_reason = str(msg.extra or "")
            raise Closed(self.ws.close_code, self.close_reason)
        assert msg.type is WSMsgType.TEXT, msg
        frame: Frame = json.loads(msg.data)
        (self.events if "id" in frame else self.controls).append(frame)
        return frame

    async def next_event(self, type_: str | None = None, within: float = 5.0) -> Frame:
        """The next event (of that type), skipping control frames and other types."""
        return await self.until(
            lambda frame: "id" in frame and (type_ is None or frame["type"] == type_), within
        )

    async def collect(self, count: int, within: float = 5.0) -> list[Frame]:
        return [await self.next_event(within=within) for _ in range(count)]

    async def until(self, matches: Callable[[Frame], bool], within: float = 5.0) -> Frame:
        """The first frame that matches, read within `within` seconds in all (a stream that
        never stops, such as periodic events, cannot keep this waiting)."""
        deadline = time.monotonic() + within
        while True:
            frame = await self.next_frame(max(0.0, deadline - time.monotonic()))
            if matches(frame):
                return frame

    async def quiet(self, within: float = 0.2) -> list[Frame]:
        """The frames arriving in the next `within` seconds (asserting that nothing else
        comes: nothing the server had to send may still be on its way by then)."""
        found: list[Frame] = []
        deadline = time.monotonic() + within
        try:
            while True:
                found.append(await self.next_frame(max(0.0, deadline - time.monotonic())))
        except TimeoutError:
            return found

    async def close_code(self, within: float = 5.0) -> int | None:
        """Read until the server closes, within `within` seconds in all; its close code."""
        try:
            await self.until(lambda _frame: False, within)
        except Closed as closed:
            return closed.code
        raise AssertionError("unreachable: until() returns a frame or raises")


@asynccontextmanager
async def events_socket(
    session: aiohttp.ClientSession, url: str, token: str, **auth: Any
) -> AsyncIterator[EventCollector]:
    """Connect and authenticate (asserting auth_ok); closes the socket on exit."""
    async with session.ws_connect(url) as ws:
        collector = EventCollector(ws)
        answer = await collector.auth(token, **auth)
        assert answer["type"] == "auth_ok", answer
        yield collector


async def drain(collector: EventCollector, seconds: float) -> None:
    """Keep reading (a fast client) for a while."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            await collector.next_frame(deadline - time.monotonic())
        except TimeoutError:
            return

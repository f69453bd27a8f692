"""What Asterisk itself reports, for e2e assertions: ARI events of every channel, read-only.

A second ARI application subscribed to everything (`subscribeAll=true`) sees the playbacks,
bridges and channel states of the daemon's calls without taking part in them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from types import TracebackType
from typing import Any

import aiohttp

from tests.sandbox import AsteriskSandbox

Event = dict[str, Any]


class AriWatch:
    """`subscribe_all=False` with the daemon's app name: an app of its own (the sandbox's smoke
    test drives calls with it)."""

    def __init__(
        self, asterisk: AsteriskSandbox, app: str = "e2e-watch", *, subscribe_all: bool = True
    ) -> None:
        every = "true" if subscribe_all else "false"
        self._url = f"{asterisk.ari_events_url}?app={app}&subscribeAll={every}"
        self._asterisk = asterisk
        self._session = aiohttp.ClientSession(headers=asterisk.ari_headers)
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._unclaimed: list[Event] = []
        self.seen: list[Event] = []

    async def __aenter__(self) -> AriWatch:
        websocket = await self._session.ws_connect(self._url)
        self._reader = asyncio.create_task(self._read(websocket))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.wait([self._reader])
        await self._session.close()

    async def _read(self, websocket: aiohttp.ClientWebSocketResponse) -> None:
        async with websocket:
            async for message in websocket:
                event = json.loads(message.data)
                self.seen.append(event)
                self._events.put_nowait(event)

    async def event(
        self, event_type: str, matches: Callable[[Event], bool] = lambda _: True, within: float = 10
    ) -> Event:
        """The first not yet claimed event of `event_type` that `matches`, waiting for it."""
        async with asyncio.timeout(within):
            while True:
                for event in self._unclaimed:
                    if event["type"] == event_type and matches(event):
                        self._unclaimed.remove(event)
                        return event
                self._unclaimed.append(await self._events.get())


def playback_on(channel_id: str) -> Callable[[Event], bool]:
    return lambda event: event.get("playback", {}).get("target_uri") == f"channel:{channel_id}"

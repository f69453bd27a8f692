"""The Stasis application's lifeline: the ARI events WebSocket, kept open.

Reconnects with a short bounded backoff (the app must re-register within about a second
of Asterisk coming back, or new calls fall through to the dialplan fallback). The read
loop only hands frames to a synchronous callback: Asterisk drops a WebSocket whose client
stops reading, so nothing slow ever runs here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

import aiohttp
import structlog

from callcenterd.telephony.ari import AriEndpoint, basic_auth_header
from callcenterd.telephony.ari_client import AriClient
from callcenterd.telephony.ari_control import AriCallControl
from callcenterd.telephony.call_control import DEFAULT_NODE
from callcenterd.telephony.errors import TelephonyError
from callcenterd.telephony.link import SupervisedLink

log = structlog.get_logger(__name__)

# The node the frame came from, and the frame.
EventSink = Callable[[str, dict[str, Any]], None]
Connected = Callable[[AriCallControl], Coroutine[Any, Any, None]]


class AriLink(SupervisedLink[AriEndpoint]):
    name = "ari"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        clock: Callable[[], datetime],
        on_event: EventSink,
        on_connected: Connected,
        *,
        backoff_max: float = 1.0,
        heartbeat: float = 5.0,
        node: str = DEFAULT_NODE,
    ) -> None:
        super().__init__(clock)
        self._session = session
        self._on_event = on_event
        self._on_connected = on_connected
        self._backoff_max = backoff_max
        self._heartbeat = heartbeat
        self.node = node
        self.control: AriCallControl | None = None

    def _url_of(self, endpoint: AriEndpoint) -> str:
        return endpoint.base_url

    def _configured(self, endpoint: AriEndpoint | None) -> None:
        self.control = self._control_for(endpoint) if endpoint else None

    def _control_for(self, endpoint: AriEndpoint) -> AriCallControl:
        return AriCallControl(AriClient(self._session, endpoint), self.node)

    @property
    def connected_control(self) -> AriCallControl | None:
        """The control while the events WebSocket is up: actions without events are blind."""
        return self.control if self.connected else None

    async def _run(self, endpoint: AriEndpoint) -> None:
        delay = 0.1
        while True:
            try:
                await self._session_once(endpoint)
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except (TelephonyError, aiohttp.ClientError, OSError, TimeoutError) as err:
                detail = err.detail if isinstance(err, TelephonyError) else str(err) or repr(err)
                self._set("disconnected", detail)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff_max)

    async def _session_once(self, endpoint: AriEndpoint) -> None:
        url = endpoint.base_url.replace("http", "ws", 1) + "/ari/events"
        params = {"app": endpoint.app, "subscribeAll": "false"}
        headers = {"Authorization": basic_auth_header(endpoint.username, endpoint.password)}
        async with self._session.ws_connect(
            url,
            params=params,
            headers=headers,
            heartbeat=self._heartbeat,
            timeout=aiohttp.ClientWSTimeout(ws_close=endpoint.timeout),
        ) as ws:
            control = self._control_for(endpoint)
            self.control = control
            with contextlib.suppress(TelephonyError):
                self.asterisk_version = await control.asterisk_version()
            self._set("connected")
            # Resync runs beside the reader: the reader must start reading at once.
            resync = asyncio.create_task(self._on_connected(control), name="ari-resync")
            try:
                async for message in ws:
                    if message.type is aiohttp.WSMsgType.TEXT:
                        self._deliver(message.data)
                    elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        break
            finally:
                if not resync.done():
                    resync.cancel()
        self._set("disconnected", "events WebSocket closed")

    def _deliver(self, data: str) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            log.warning("ari_bad_frame", size=len(data))
            return
        try:
            self._on_event(self.node, frame)
        except Exception:
            # A bug handling one event must not drop the link (and with it every call).
            log.exception("ari_event_handler_failed", type=frame.get("type"))

"""`GET /ws/events`: the live event stream over a WebSocket.

Protocol (JSON text frames):
- the client authenticates first: `{"type": "auth", "token": "<JWT>", "last_event_id": 41,
  "events": [...]}` (only `token` required), or with `?token=` (and `?last_event_id=`) in
  the URL; the server answers `{"type": "auth_ok", "data": {...}}`;
- then events `{"id", "type", "timestamp", "data"}`, filtered by the user's role;
- `{"type": "subscribe" | "unsubscribe", "events": [...]}` narrows or widens the event types
  (answered `{"type": "subscribed", "data": {"events": [...]}}`); `{"type": "ping"}` is
  answered `{"type": "pong"}`; a known message with bad fields gets
  `{"type": "error", "data": {...}}` and the socket stays open.

Close codes: 4001 authentication failed (none within the time limit, bad, expired or
revoked token, a first message that is not `auth`), 4003 forbidden (inactive user), 4008 too
slow (events piled up unsent), 1001 server shutting down; for frames the protocol has no
place for (RFC 6455): 1003 a binary frame, 1007 text that is not JSON, not a JSON object, or
an object of no known `type` (and text that is not UTF-8), 1009 a message over
`events.max_message_bytes`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

import structlog
from aiohttp import WSCloseCode, WSMessage, WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import from_json

from callcenterd import keys
from callcenterd.errors import CallcenterError
from callcenterd.events.filters import EVENT_TYPES
from callcenterd.events.stream import (
    CLOSE_AUTH_FAILED,
    CLOSE_FORBIDDEN,
    EventStream,
    StreamClient,
    control_frame,
)
from callcenterd.security import Principal
from callcenterd.services.auth import AuthService
from callcenterd.settings import EventsSettings

log = structlog.get_logger(__name__)

WS_PATH = "/ws/events"
_MAX_REASON_BYTES = 120  # a close frame's reason is at most 123 bytes
# Bytes a peer may have unread in its socket's buffer before frames queue for it instead.
DIRECT_WRITE_LIMIT = 256 * 1024


# Event ids count from 1 per run of the daemon; anything past a 64-bit id is not one of ours.
MAX_EVENT_ID = 2**63 - 1


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuthMessage(_Message):
    type: Literal["auth"]
    token: str = Field(min_length=1, max_length=4096)
    last_event_id: int | None = Field(None, ge=0, le=MAX_EVENT_ID)
    events: list[str] | None = Field(None, max_length=64)


class SubscribeMessage(_Message):
    type: Literal["subscribe", "unsubscribe"]
    events: list[str] = Field(max_length=64)


class PingMessage(_Message):
    type: Literal["ping"]


ClientMessage = Annotated[AuthMessage | SubscribeMessage | PingMessage, Field(discriminator="type")]
_MESSAGES: TypeAdapter[AuthMessage | SubscribeMessage | PingMessage] = TypeAdapter(ClientMessage)
MESSAGE_TYPES = frozenset({"auth", "subscribe", "unsubscribe", "ping"})
# Deeper than any message goes; a deeper frame is refused before it is decoded further.
MAX_FRAME_DEPTH = 8


class QueryParams(BaseModel):
    model_config = ConfigDict(extra="ignore")
    token: str | None = Field(None, min_length=1, max_length=4096)
    last_event_id: int | None = Field(None, ge=0, le=MAX_EVENT_ID)


@dataclass(frozen=True, slots=True)
class SocketSettings:
    auth_timeout: float = 10.0  # seconds to authenticate after connecting
    heartbeat: float = 30.0  # server pings; a peer silent for this long is dropped
    revalidate_seconds: float = 60.0  # recheck the token (revocation, expiry, user changes)
    close_timeout: float = 5.0  # at most this long to close a socket
    max_message_bytes: int = 64 * 1024  # a bigger message closes the socket 1009


class Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def error_frame(detail: str, code: str = "WS_BAD_MESSAGE", field: str | None = None) -> str:
    """The API's error shape, as a frame."""
    return control_frame(
        "error", {"detail": detail, "type": "validation_error", "code": code, "field": field}
    )


def _reason(text: str) -> str:
    return text.encode()[:_MAX_REASON_BYTES].decode(errors="ignore")


def _refusal(err: CallcenterError) -> Refused:
    return Refused(CLOSE_FORBIDDEN if err.status == 403 else CLOSE_AUTH_FAILED, err.detail)


Message = AuthMessage | SubscribeMessage | PingMessage


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def decode(msg: WSMessage) -> Message | str:
    """A client's frame as a message, or the error text for a known message with bad fields.

    Raises Refused for a frame the protocol has no place for: the socket is closed with the
    standard code (1003 binary, 1007 not a JSON object of a known type, 1009 too big).
    """
    if msg.type is WSMsgType.ERROR:
        # aiohttp has already closed the socket with the code (1009 too big, 1007 not UTF-8).
        code = getattr(msg.data, "code", WSCloseCode.INVALID_TEXT)
        raise Refused(int(code), "frame refused")
    if msg.type is WSMsgType.BINARY:
        raise Refused(WSCloseCode.UNSUPPORTED_DATA, "binary frames are not understood")
    if msg.type is not WSMsgType.TEXT:
        raise Refused(WSCloseCode.UNSUPPORTED_DATA, "unexpected frame")
    try:
        payload = from_json(msg.data)
    except ValueError as err:  # also a nesting deeper than the parser takes
        raise Refused(WSCloseCode.INVALID_TEXT, "frame is not JSON") from err
    if not isinstance(payload, dict):
        raise Refused(WSCloseCode.INVALID_TEXT, "frame is not a JSON object")
    kind = payload.get("type")
    if not isinstance(kind, str) or kind not in MESSAGE_TYPES:
        raise Refused(WSCloseCode.INVALID_TEXT, "unknown message type")
    if _depth(payload) > MAX_FRAME_DEPTH:
        raise Refused(WSCloseCode.INVALID_TEXT, "frame is nested too deep")
    try:
        return _MESSAGES.validate_python(payload)
    except ValidationError as err:
        return _first_error(err)


class EventSocket:
    """One connection: authenticate, attach to the stream, then read and write until closed."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        auth: AuthService,
        stream: EventStream,
        clock: Callable[[], datetime],
        settings: SocketSettings,
    ) -> None:
        self._ws = ws
        self._transport = transport
        self._auth = auth
        self._stream = stream
        self._clock = clock
        self._settings = settings

    async def run(self, query: QueryParams) -> None:
        try:
            client = await self._open(query)
        except Refused as refused:
            await self._close(refused.code, refused.reason)
            return
        client.sink = self._write_now
        try:
            await self._serve(client)
        finally:
            client.sink = None  # nothing may follow our close frame
            self._stream.detach(client)
        await self._close(client.close_code or 1000, client.close_reason)

    # --- authentication -----------------------------------------------------------------------
    async def _open(self, query: QueryParams) -> StreamClient:
        if query.token is not None:
            hello = AuthMessage(type="auth", token=query.token, last_event_id=query.last_event_id)
        else:
            hello = await self._first_message()
        principal = await self._authenticate(hello.token)
        types = frozenset(hello.events) & EVENT_TYPES if hello.events is not None else None
        viewer = await self._stream.viewer(principal)
        # Attached before auth_ok is sent, with no sink yet: an event published while auth_ok
        # is on its way waits in the client's queue, after auth_ok, instead of being lost.
        client = self._stream.attach(
            viewer, types=types, last_event_id=hello.last_event_id, token=hello.token
        )
        try:
            await self._ws.send_str(
                control_frame(
                    "auth_ok",
                    {
                        "user_id": principal.id,
                        "role": principal.role.value,
                        "last_event_id": self._stream.last_id,
                        "events": sorted(types) if types is not None else None,
                    },
                )
            )
        except BaseException:
            self._stream.detach(client)
            raise
        log.info("ws_connected", user_id=principal.id, role=principal.role.value)
        unknown = _unknown(hello.events or [])
        if unknown is not None:
            # Not fatal: the known names apply, the client is told about the others.
            client.offer(unknown)
        return client

    async def _first_message(self) -> AuthMessage:
        try:
            msg = await self._ws.receive(timeout=self._settings.auth_timeout)
        except TimeoutError as err:
            raise Refused(CLOSE_AUTH_FAILED, "authentication timed out") from err
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            raise Refused(CLOSE_AUTH_FAILED, "expected an auth message")
        message = decode(msg)
        if isinstance(message, str):
            raise Refused(CLOSE_AUTH_FAILED, f"bad auth message: {message}")
        if not isinstance(message, AuthMessage):
            raise Refused(CLOSE_AUTH_FAILED, "expected an auth message first")
        return message

    async def _authenticate(self, token: str) -> Principal:
        try:
            return await self._auth.authenticate(f"Bearer {token}")
        except CallcenterError as err:
            raise _refusal(err) from err

    # --- the session --------------------------------------------------------------------------
    async def _serve(self, client: StreamClient) -> None:
        tasks = [
            asyncio.create_task(self._read(client)),
            asyncio.create_task(self._write(client)),
            asyncio.create_task(self._revalidate(client)),
            asyncio.create_task(client.closed.wait()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def _write_now(self, wire: bytes) -> bool:
        transport = self._transport
        if (
            self._ws.closed
            or transport is None
            or transport.is_closing()
            or transport.get_write_buffer_size() > DIRECT_WRITE_LIMIT
        ):
            return False
        transport.write(wire)
        return True

    async def _write(self, client: StreamClient) -> None:
        """The slow path: frames queued while the peer's buffer was full, sent as it reads."""
        while True:
            await client.ready.wait()
            client.writing = True
            try:
                while frames := client.take():
                    for frame in frames:
                        await self._ws.send_str(frame)
            finally:
                client.writing = False

    async def _read(self, client: StreamClient) -> None:
        async for msg in self._ws:
            try:
                message = decode(msg)
            except Refused as refused:
                log.info("ws_frame_refused", close_code=refused.code, reason=refused.reason)
                client.close(refused.code, refused.reason)
                return
            if isinstance(message, str):
                client.offer(error_frame(message))
                continue
            await self._handle(client, message)
        client.close(1000, "client closed")

    async def _handle(self, client: StreamClient, message: Message) -> None:
        match message:
            case PingMessage():
                client.offer(control_frame("pong"))
            case SubscribeMessage(type=kind, events=events):
                self._subscribe(client, kind, events)
            case AuthMessage(token=token):
                await self._renew(client, token)

    def _subscribe(self, client: StreamClient, kind: str, events: list[str]) -> None:
        unknown = _unknown(events)
        if unknown is not None:
            client.offer(unknown)
        named = frozenset(events) & EVENT_TYPES
        current = client.types if client.types is not None else EVENT_TYPES
        if kind == "subscribe":
            client.types = named if client.types is None else current | named
        else:
            client.types = current - named
        client.offer(control_frame("subscribed", {"events": sorted(client.types)}))

    async def _renew(self, client: StreamClient, token: str) -> None:
        """A fresh token for the same user (before the old one expires)."""
        try:
            principal = await self._auth.authenticate(f"Bearer {token}")
        except CallcenterError as err:
            client.offer(error_frame(err.detail, err.code, "token"))
            return
        if principal.id != client.viewer.user_id:
            client.offer(error_frame("the token is another user's", "WS_OTHER_USER", "token"))
            return
        client.token = token
        client.viewer = await self._stream.viewer(principal)
        client.offer(control_frame("auth_ok", {"user_id": principal.id, "renewed": True}))

    async def _revalidate(self, client: StreamClient) -> None:
        """Close the socket once its token would no longer pass a REST request."""
        while True:
            principal = await self._authenticate_or_close(client)
            if principal is None:
                return
            client.viewer = await self._stream.viewer(principal)
            left = (principal.claims.expires_at - self._clock()).total_seconds()
            wait = max(0.0, min(self._settings.revalidate_seconds, left))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.revalidate.wait(), wait)
            client.revalidate.clear()

    async def _authenticate_or_close(self, client: StreamClient) -> Principal | None:
        try:
            return await self._auth.authenticate(f"Bearer {client.token}")
        except CallcenterError as err:
            refused = _refusal(err)
            client.close(refused.code, refused.reason)
            return None

    async def _close(self, code: int, reason: str) -> None:
        # A peer that does not read cannot take our close frame either: give up on it.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._ws.close(code=code, message=_reason(reason).encode()),
                self._settings.close_timeout,
            )


def _unknown(events: list[str]) -> str | None:
    """An error frame naming the event types that do not exist, if any."""
    unknown = sorted(set(events) - EVENT_TYPES)
    if not unknown:
        return None
    return error_frame(f"unknown event types: {', '.join(unknown)}", "WS_UNKNOWN_EVENT", "events")


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def _query(request: web.Request) -> QueryParams | str:
    try:
        return QueryParams.model_validate(dict(request.query))
    except ValidationError as err:
        return _first_error(err)


def socket_settings(settings: EventsSettings) -> SocketSettings:
    return SocketSettings(
        auth_timeout=settings.auth_timeout_seconds,
        heartbeat=settings.heartbeat_seconds,
        revalidate_seconds=settings.revalidate_seconds,
        max_message_bytes=settings.max_message_bytes,
    )


async def events_socket(request: web.Request) -> web.StreamResponse:
    services = request.app[keys.SERVICES]
    settings = socket_settings(services.settings.events)
    ws = web.WebSocketResponse(
        heartbeat=settings.heartbeat,
        # Frames are serialised once for every client; compressing them per client would
        # cost more CPU than the whole fan-out.
        compress=False,
        timeout=settings.close_timeout,
        max_msg_size=settings.max_message_bytes,
    )
    await ws.prepare(request)
    query = _query(request)
    if isinstance(query, str):
        await ws.close(code=CLOSE_AUTH_FAILED, message=_reason(f"bad query: {query}").encode())
        return ws
    socket = EventSocket(
        ws, request.transport, services.auth, services.events_stream, services.clock, settings
    )
    await socket.run(query)
    return ws


def add_ws_routes(app: web.Application) -> None:
    app.router.add_get(WS_PATH, events_socket)

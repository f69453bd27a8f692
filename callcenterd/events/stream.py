"""The live event stream behind `/ws/events`: one fan-out, a replay buffer, bounded clients.

One bus subscription feeds one fan-out task, which per event fixes the audience once,
serialises the frame once, keeps it in the replay buffer, then offers it to each client
whose role and subscription allow it. Clients each have a bounded queue that only their own
writer drains: a client that falls behind is closed (4008), nobody waits for it.

An event enters the replay buffer before any client is offered it (with the events queued
behind it: a batch, one write per client), and the clients connected then are offered it in
turns of FAN_OUT_TURN, the event loop running other work in between
(a thousand sockets written in one go hold it ~15 ms, which routing would wait out). A client
attaching between two turns is not among them: resuming, it gets the event from the replay;
so it can neither miss an event nor get one twice. Events keep their order: the next one's
fan-out starts when this one's is done.

Coalescing: once an event arrives, the fan-out waits `flush_seconds` (events.flush_seconds,
0.1 s by default) before it takes it and everything queued behind it. Events published
within that window reach the replay buffer together and go out as one write per client
(concatenated frames: no protocol change). With 1,000 clients each write is a system call,
so writes per event cost the loop far more than the bytes they carry; with many clients the
window widens (`writes_per_second`, 1,000 clients: 0.25 s). Nothing above changes:
an event is still offered only once it is in the replay buffer, and `last_id` (what
`auth_ok` tells a client) only counts events already there, so an event waiting in the
window reaches a client that attaches meanwhile live, never twice and never not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import structlog

from callcenterd.events.bus import BusEvent, EventBus, Subscription
from callcenterd.events.filters import (
    QUEUE_STATS,
    Audience,
    AudienceTracker,
    Viewer,
    may_see,
    wants,
)
from callcenterd.security import Principal
from callcenterd.settings import EventsSettings

log = structlog.get_logger(__name__)

# WebSocket close codes (4000-4999 are the application's own).
CLOSE_GOING_AWAY = 1001  # the server is shutting down
CLOSE_AUTH_FAILED = 4001  # no auth in time, bad, expired or revoked token
CLOSE_FORBIDDEN = 4003  # authenticated, but not allowed (inactive user)
CLOSE_TOO_SLOW = 4008  # the client did not read its events fast enough

StatsSource = Callable[[], dict[str, Any]]
# Writes one whole WebSocket frame now, without waiting; False when the peer's buffer is full.
Sink = Callable[[bytes], bool]
OperatorOfUser = Callable[[str], Awaitable[str | None]]  # user id -> their operator id
Sleep = Callable[[float], Coroutine[Any, Any, None]]  # asyncio.sleep; tests hold the window open


# Clients offered an event between two yields of the fan-out (~1.5 ms of socket writes).
FAN_OUT_TURN = 100
# Events queued on the bus while a fan-out ran go out together: one write per client.
FAN_OUT_BATCH = 100
# The widest the coalescing window grows with the number of clients.
MAX_FLUSH_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class StreamSettings:
    replay_size: int = 10_000  # events kept for clients resuming with last_event_id
    client_queue_size: int = 1_000  # frames waiting for one client before it is dropped
    queue_stats_seconds: float = 5.0  # 0: no queue_stats
    bus_queue_size: int = 10_000  # the fan-out's own bus subscription
    # How often the fan-out checks that the bus has not dropped its subscription.
    watch_seconds: float = 1.0
    # Events published this long after the first one go out with it, one write per client.
    flush_seconds: float = 0.1
    # With many clients the window widens so that the fan-out makes about this many socket
    # writes a second at most (1,000 clients: 0.25 s), up to MAX_FLUSH_SECONDS. 0: fixed window.
    writes_per_second: int = 4000


@dataclass(frozen=True, slots=True)
class Entry:
    """A published event as the stream keeps it: its audience and its serialised frame."""

    id: int
    type: str
    audience: Audience
    frame: str
    wire: bytes  # the frame as WebSocket bytes: servers do not mask, one copy serves all


def ws_text_frame(text: str) -> bytes:
    """A final, unmasked WebSocket text frame (RFC 6455 5.2), as a server sends it."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


def frame_of(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), default=str)


def control_frame(type_: str, data: dict[str, Any] | None = None) -> str:
    """Frames that are not events (auth_ok, pong, error, resync_required): no id."""
    return frame_of({"type": type_, "data": data or {}})


class ReplayBuffer:
    """The last `size` events, ids contiguous: a gap in ids clears it (those are lost)."""

    def __init__(self, size: int) -> None:
        self._entries: deque[Entry] = deque(maxlen=max(1, size))
        self.last_id = 0  # the newest id seen, kept across a clear

    def __len__(self) -> int:
        return len(self._entries)

    def follows(self, event_id: int) -> bool:
        """Whether `event_id` comes right after the newest event here (no gap)."""
        return self.last_id == 0 or event_id == self.last_id + 1

    def append(self, entry: Entry) -> bool:
        """Keep the entry; False when ids jumped (events were lost before it)."""
        contiguous = self.follows(entry.id)
        if not contiguous:
            self._entries.clear()
        self._entries.append(entry)
        self.last_id = entry.id
        return contiguous

    def after(self, last_id: int) -> list[Entry] | None:
        """The events after `last_id`; None when some are no longer here (resync).

        An id above the newest one comes from an earlier run of the daemon (ids restart at
        1), so the client cannot know what it missed either.
        """
        if last_id > self.last_id or last_id < 0:
            return None
        if last_id == self.last_id:
            return []
        first = self._entries[0].id if self._entries else self.last_id + 1
        if last_id < first - 1:
            return None
        return list(islice(self._entries, last_id + 1 - first, None))


@dataclass(eq=False)
class StreamClient:
    """One connected socket as the fan-out sees it; the handler owns its writer.

    Fast path: while nothing is queued, a frame goes straight to the socket's `sink` (no
    task switch per client and event, which is most of the cost with 1,000 clients). Once
    the peer's buffer is full, frames queue (bounded) and the handler's writer drains them,
    waiting for the peer; direct writes resume only when the queue is empty again.
    """

    viewer: Viewer
    types: frozenset[str] | None  # None: every event type
    max_pending: int
    token: str = field(default="", repr=False)
    sink: Sink | None = field(default=None, repr=False)
    writing: bool = False  # the handler's writer is sending queued frames
    close_code: int | None = None
    close_reason: str = ""
    # Frames owed from before the client attached: the live bound does not count them.
    _backlog: deque[str] = field(default_factory=deque)
    _pending: deque[str] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    revalidate: asyncio.Event = field(default_factory=asyncio.Event)

    def owe(self, frames: list[str]) -> None:
        self._backlog.extend(frames)
        if frames:
            self.ready.set()

    def offer(self, frame: str, wire: bytes | None = None) -> None:
        self.offer_all([frame], wire)

    def offer_all(self, frames: list[str], wire: bytes | None = None) -> None:
        """Frames in order; `wire` is all of them as WebSocket bytes, written in one go
        (one system call for a batch of events) while the socket takes them directly."""
        if self.close_code is not None or not frames:
            return
        if (
            self.sink is not None
            and not self.writing
            and not self._pending
            and not self._backlog
            and self.sink(wire if wire is not None else b"".join(map(ws_text_frame, frames)))
        ):
            return
        for frame in frames:
            if len(self._pending) >= self.max_pending:
                self.close(CLOSE_TOO_SLOW, f"too slow: {len(self._pending)} events waiting")
                return
            self._pending.append(frame)
        self.ready.set()

    def take(self) -> list[str]:
        """Everything owed, backlog first; the writer sends it in order."""
        frames = [*self._backlog, *self._pending]
        self._backlog.clear()
        self._pending.clear()
        self.ready.clear()
        return frames

    def pending(self) -> int:
        return len(self._backlog) + len(self._pending)

    def close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            self._backlog.clear()
            self._pending.clear()
            self.closed.set()


class EventStream:
    def __init__(
        self,
        bus: EventBus,
        tracker: AudienceTracker,
        settings: StreamSettings,
        operator_of_user: OperatorOfUser,
        queue_stats: StatsSource | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._bus = bus
        self._sleep = sleep
        self._operator_of_user = operator_of_user
        self._tracker = tracker
        self.settings = settings
        self._queue_stats = queue_stats
        self._buffer = ReplayBuffer(settings.replay_size)
        self._clients: dict[StreamClient, None] = {}
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.events_lost = 0  # times the bus dropped the fan-out (never expected)

    # --- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._subscription = self._bus.subscribe(self.settings.bus_queue_size)
        self._tasks.append(asyncio.create_task(self._fan_out(), name="events-fan-out"))
        if self._queue_stats is not None and self.settings.queue_stats_seconds > 0:
            self._tasks.append(asyncio.create_task(self._publish_stats(), name="queue-stats"))

    async def stop(self) -> None:
        self.close_all(CLOSE_GOING_AWAY, "server shutting down")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._subscription is not None:
            self._subscription.close("stream stopped")

    def close_all(self, code: int, reason: str) -> None:
        for client in list(self._clients):
            client.close(code, reason)

    # --- clients ------------------------------------------------------------------------------
    @property
    def last_id(self) -> int:
        return self._buffer.last_id

    async def viewer(self, principal: Principal) -> Viewer:
        """The filter's view of an authenticated user (one lookup, at connect)."""
        operator_id = await self._operator_of_user(principal.id)
        return Viewer(principal.id, principal.role, principal.group_id, operator_id)

    def clients(self) -> list[StreamClient]:
        return list(self._clients)

    def attach(
        self,
        viewer: Viewer,
        *,
        types: frozenset[str] | None = None,
        last_event_id: int | None = None,
        token: str = "",
        max_pending: int | None = None,
    ) -> StreamClient:
        """Register a client; with `last_event_id`, first owe it what it missed (or a
        resync_required frame). No await here: no event can slip in between."""
        client = StreamClient(
            viewer, types, max_pending or self.settings.client_queue_size, token=token
        )
        if last_event_id is not None:
            missed = self._buffer.after(last_event_id)
            if missed is None:
                client.owe([self._resync_frame(last_event_id)])
            else:
                client.owe(
                    [
                        entry.frame
                        for entry in missed
                        if may_see(viewer, entry.audience) and wants(types, entry.type)
                    ]
                )
        self._clients[client] = None
        return client

    def detach(self, client: StreamClient) -> None:
        self._clients.pop(client, None)

    def revalidate_user(self, user_id: str) -> None:
        """The user changed (role, group, password, deactivation): recheck their sockets."""
        for client in self._clients:
            if client.viewer.user_id == user_id:
                client.revalidate.set()

    def _resync_frame(self, last_event_id: int) -> str:
        return control_frame(
            "resync_required",
            {
                "last_event_id": last_event_id,
                "oldest_event_id": self.last_id - len(self._buffer) + 1,
                "newest_event_id": self.last_id,
            },
        )

    # --- the fan-out --------------------------------------------------------------------------
    async def _fan_out(self) -> None:
        while True:
            subscription = self._subscription
            assert subscription is not None
            try:
                event = await subscription.next(self.settings.watch_seconds)
            except TimeoutError:
                if subscription.closed_reason is not None:
                    self._resubscribe(subscription.closed_reason)
                continue
            await self._flush_window()
            queue = subscription.queue
            waiting: BusEvent | None = event
            while waiting is not None or not queue.empty():
                entries, waiting = self._take_batch(waiting or queue.get_nowait(), queue)
                await self._deliver_in_turns(entries)

    async def _flush_window(self) -> None:
        """Let the events published shortly after this one join it (one write per client)."""
        if self.settings.flush_seconds > 0:
            await self._sleep(self.flush_window())

    def flush_window(self) -> float:
        """The coalescing window now: `flush_seconds`, wider when clients are so many that
        one write each per window would go over `writes_per_second` (each write is a system
        call on the event loop, which routing shares)."""
        window = self.settings.flush_seconds
        if window > 0 and self.settings.writes_per_second > 0:
            crowd = len(self._clients) / self.settings.writes_per_second
            window = max(window, min(MAX_FLUSH_SECONDS, crowd))
        return window

    def _take_batch(
        self, first: BusEvent, queue: asyncio.Queue[BusEvent]
    ) -> tuple[list[Entry], BusEvent | None]:
        """`first` and the events queued after it, up to FAN_OUT_BATCH, as entries; and the
        event after a gap in ids, if any: its resync_required frame goes out after these."""
        entries = [self._entry(first)]
        while len(entries) < FAN_OUT_BATCH and not queue.empty():
            event = queue.get_nowait()
            if not self._buffer.follows(event.id):
                return entries, event
            entries.append(self._entry(event))
        return entries, None

    def _resubscribe(self, reason: str) -> None:
        self.events_lost += 1
        log.error("event_stream_dropped_by_bus", reason=reason)
        self._subscription = self._bus.subscribe(self.settings.bus_queue_size)

    def deliver(self, event: BusEvent) -> None:
        """One event to every client allowed to see it, all at once (never waits)."""
        self._offer([self._entry(event)], list(self._clients))

    async def _deliver_in_turns(self, entries: list[Entry]) -> None:
        """Events to every client allowed to see them, FAN_OUT_TURN clients at a time. The
        clients are those attached when the entries entered the replay buffer: no await
        may come between the two."""
        clients = list(self._clients)
        for start in range(0, len(clients), FAN_OUT_TURN):
            if start:
                await asyncio.sleep(0)
            self._offer(entries, clients[start : start + FAN_OUT_TURN])

    def _entry(self, event: BusEvent) -> Entry:
        """The event's audience and frame, fixed once and kept in the replay buffer."""
        audience = self._tracker.audience(event.type, event.data)
        frame = frame_of(event.as_json())
        entry = Entry(event.id, event.type, audience, frame, ws_text_frame(frame))
        if not self._buffer.append(entry):
            # Events were lost between the last one and this: nobody can be told which.
            log.error("event_stream_gap", before=event.id)
            lost = control_frame("resync_required", {"newest_event_id": event.id})
            for client in self._clients:
                client.offer(lost)
        return entry

    def _offer(self, entries: list[Entry], clients: list[StreamClient]) -> None:
        attached = self._clients
        # Clients of one view (what the filter looks at, and the same subscription) see the
        # same events: worked out once per view, not per client (most share a handful).
        views: dict[Hashable, tuple[list[str], bytes] | None] = {}
        for client in clients:
            if client not in attached:  # detached since the fan-out began
                continue
            viewer = client.viewer
            key = (viewer.role, viewer.group_id, viewer.operator_id, client.types)
            if key in views:
                view = views[key]
            else:
                view = views[key] = _view(entries, viewer, client.types)
            if view is not None:
                client.offer_all(*view)

    async def _publish_stats(self) -> None:
        assert self._queue_stats is not None
        while True:
            await asyncio.sleep(self.settings.queue_stats_seconds)
            try:
                self._bus.publish(QUEUE_STATS, self._queue_stats())
            except Exception:
                # A figure that cannot be computed must not end the stream's stats for good.
                log.exception("queue_stats_failed")


def _view(
    entries: list[Entry], viewer: Viewer, types: frozenset[str] | None
) -> tuple[list[str], bytes] | None:
    """The entries this viewer may see and wants, as frames and as one write; None: none."""
    seen = [
        entry for entry in entries if may_see(viewer, entry.audience) and wants(types, entry.type)
    ]
    if not seen:
        return None
    return [entry.frame for entry in seen], b"".join(entry.wire for entry in seen)


def stream_settings(settings: EventsSettings) -> StreamSettings:
    return StreamSettings(
        replay_size=settings.replay_buffer_size,
        client_queue_size=settings.client_queue_size,
        queue_stats_seconds=settings.queue_stats_seconds,
        bus_queue_size=max(10_000, settings.replay_buffer_size),
        flush_seconds=settings.flush_seconds,
    )

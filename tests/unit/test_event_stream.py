"""The live event stream: who sees what, replay on resume, and slow clients."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from callcenterd.domain.users import Role, User
from callcenterd.events.bus import BusEvent, EventBus
from callcenterd.events.filters import Audience, AudienceTracker, Viewer, may_see, wants
from callcenterd.events.stream import (
    CLOSE_TOO_SLOW,
    FAN_OUT_TURN,
    MAX_FLUSH_SECONDS,
    Entry,
    EventStream,
    ReplayBuffer,
    StreamClient,
    StreamSettings,
    stream_settings,
    ws_text_frame,
)
from callcenterd.security import Principal, TokenClaims
from callcenterd.settings import EventsSettings
from tests.eventually import eventually

GROUPS = {"op-a": "g1", "op-b": "g1", "op-c": "g2"}
QUEUES = {"q-sales": ["op-c"], "q-support": ["op-a"]}

ADMIN = Viewer("u-admin", Role.ADMIN)
MANAGER = Viewer("u-manager", Role.MANAGER)
SUP_G1 = Viewer("u-sup1", Role.SUPERVISOR, group_id="g1")
SUP_G2 = Viewer("u-sup2", Role.SUPERVISOR, group_id="g2")
SUP_NONE = Viewer("u-sup0", Role.SUPERVISOR)
OP_A = Viewer("u-a", Role.OPERATOR, group_id="g1", operator_id="op-a")
OP_B = Viewer("u-b", Role.OPERATOR, group_id="g1", operator_id="op-b")
OP_NONE = Viewer("u-x", Role.OPERATOR)  # an operator user without an operator row


def tracker(queue_of_call: dict[str, str] | None = None) -> AudienceTracker:
    known = queue_of_call or {}
    return AudienceTracker(GROUPS.get, lambda q: QUEUES.get(q, []), known.get)


def clock() -> datetime:
    return datetime(2025, 1, 1, tzinfo=UTC)


# --- the filter ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("viewer", "audience", "seen"),
    [
        (ADMIN, Audience(), True),
        (MANAGER, Audience(), True),
        (SUP_G1, Audience(), False),
        (SUP_G1, Audience(group_ids=frozenset({"g1"})), True),
        (SUP_G2, Audience(group_ids=frozenset({"g1"})), False),
        (SUP_NONE, Audience(group_ids=frozenset({"g1"})), False),
        (SUP_NONE, Audience(supervisors=True), True),
        (SUP_G2, Audience(supervisors=True), True),
        (OP_A, Audience(supervisors=True), False),
        (OP_A, Audience(frozenset({"op-a"}), frozenset({"g1"})), True),
        (OP_B, Audience(frozenset({"op-a"}), frozenset({"g1"})), False),
        (OP_NONE, Audience(frozenset({"op-a"})), False),
    ],
)
def test_may_see(viewer: Viewer, audience: Audience, seen: bool) -> None:
    assert may_see(viewer, audience) is seen


def test_subscription_filter() -> None:
    assert wants(None, "call_started")
    assert wants(frozenset({"call_started"}), "call_started")
    assert not wants(frozenset({"call_started"}), "queue_stats")
    assert not wants(frozenset(), "call_started")


def test_operator_events_concern_that_operator_and_their_group() -> None:
    audience = tracker().audience("operator_status_changed", {"operator_id": "op-a"})
    assert audience == Audience(frozenset({"op-a"}), frozenset({"g1"}))
    assert may_see(OP_A, audience) and may_see(SUP_G1, audience)
    assert not may_see(OP_B, audience) and not may_see(SUP_G2, audience)


def test_a_call_follows_its_operators_to_its_end() -> None:
    t = tracker()
    started = t.audience("call_started", {"call_id": "c1"})
    assert started == Audience()  # nobody known yet: admins and managers only
    queued = t.audience("call_queued", {"call_id": "c1", "queue_id": "q-sales"})
    assert queued.group_ids == {"g2"}  # a member of q-sales is in g2
    assert not may_see(OP_A, queued)
    t.audience("call_ringing", {"call_id": "c1", "operator_id": "op-b"})
    answered = t.audience("call_answered", {"call_id": "c1", "operator_id": "op-a"})
    ended = t.audience("call_ended", {"call_id": "c1", "status": "completed"})
    # An operator rung for the call (op-b) and the one who answered (op-a) both see its end.
    assert ended.operator_ids == {"op-a", "op-b"}
    assert ended.group_ids == {"g1", "g2"}
    assert may_see(OP_B, ended) and may_see(OP_A, answered)
    assert t.calls_tracked() == 0  # forgotten at its end


def test_call_started_uses_the_queue_routing_already_chose() -> None:
    audience = tracker({"c1": "q-support"}).audience("call_started", {"call_id": "c1"})
    assert may_see(SUP_G1, audience) and not may_see(SUP_G2, audience)
    assert not may_see(OP_A, audience)  # not rung yet


def test_calls_tracked_are_bounded() -> None:
    t = AudienceTracker(GROUPS.get, lambda q: [], lambda c: None, max_calls=3)
    for n in range(10):
        t.audience("call_ringing", {"call_id": f"c{n}", "operator_id": "op-a"})
    assert t.calls_tracked() == 3


def test_unknown_event_types_reach_admins_and_managers_only() -> None:
    audience = tracker().audience("something_new", {"operator_id": "op-a"})
    assert may_see(ADMIN, audience) and not may_see(SUP_G1, audience)
    assert not may_see(OP_A, audience)


# --- the replay buffer --------------------------------------------------------------------------
def fill(buffer: ReplayBuffer, ids: range) -> None:
    for n in ids:
        buffer.append(Entry(n, "call_started", Audience(), f"frame{n}", b""))


def test_replay_buffer_gives_what_was_missed() -> None:
    buffer = ReplayBuffer(5)
    fill(buffer, range(1, 9))  # keeps 4..8
    assert [e.id for e in buffer.after(5) or []] == [6, 7, 8]
    assert [e.id for e in buffer.after(3) or []] == [4, 5, 6, 7, 8]
    assert buffer.after(8) == []
    assert buffer.after(2) is None  # 3 is gone: resync
    assert buffer.after(9) is None  # from an earlier run of the daemon


def test_replay_buffer_from_the_start() -> None:
    buffer = ReplayBuffer(5)
    assert buffer.after(0) == []
    fill(buffer, range(1, 4))
    assert [e.id for e in buffer.after(0) or []] == [1, 2, 3]


def test_a_gap_in_ids_clears_the_buffer() -> None:
    buffer = ReplayBuffer(10)
    fill(buffer, range(1, 4))
    assert not buffer.append(Entry(7, "x", Audience(), "f7", b""))
    assert buffer.after(3) is None
    assert buffer.after(6) is not None and [e.id for e in buffer.after(6) or []] == [7]


# --- the stream ---------------------------------------------------------------------------------
async def no_operator(user_id: str) -> str | None:
    return None


def stream_over(bus: EventBus, **settings: Any) -> EventStream:
    """A stream whose fan-out takes each event at once (no flush window) unless told."""
    settings.setdefault("flush_seconds", 0)
    return EventStream(bus, tracker(), StreamSettings(**settings), no_operator)


def ids_of(frames: list[str]) -> list[int]:
    return [json.loads(f)["id"] for f in frames if "id" in json.loads(f)]


def publish(stream: EventStream, bus: EventBus, type_: str, data: dict[str, Any]) -> BusEvent:
    event = bus.publish(type_, data)
    stream.deliver(event)
    return event


def test_live_events_are_filtered_per_viewer() -> None:
    bus = EventBus(clock)
    stream = stream_over(bus)
    admin, sup, op_a = (stream.attach(v) for v in (ADMIN, SUP_G2, OP_A))
    publish(stream, bus, "operator_status_changed", {"operator_id": "op-a", "status": "busy"})
    publish(stream, bus, "operator_status_changed", {"operator_id": "op-c", "status": "busy"})
    assert len(admin.take()) == 2
    assert [json.loads(f)["data"]["operator_id"] for f in sup.take()] == ["op-c"]
    assert [json.loads(f)["data"]["operator_id"] for f in op_a.take()] == ["op-a"]


def test_frames_carry_id_type_timestamp_and_data() -> None:
    bus = EventBus(clock)
    stream = stream_over(bus)
    client = stream.attach(ADMIN)
    publish(stream, bus, "call_started", {"call_id": "c1"})
    (frame,) = client.take()
    assert json.loads(frame) == {
        "id": 1,
        "type": "call_started",
        "timestamp": "2025-01-01T00:00:00.000000Z",
        "data": {"call_id": "c1"},
    }


def test_resume_replays_only_what_the_viewer_may_see() -> None:
    bus = EventBus(clock)
    stream = stream_over(bus)
    for op in ("op-a", "op-c", "op-a", "op-b"):
        publish(stream, bus, "operator_status_changed", {"operator_id": op})
    client = stream.attach(OP_A, last_event_id=1)
    assert ids_of(client.take()) == [3]
    sup = stream.attach(SUP_G1, last_event_id=0, types=frozenset({"operator_status_changed"}))
    assert ids_of(sup.take()) == [1, 3, 4]


def test_resume_too_old_asks_for_a_resync_then_goes_live() -> None:
    bus = EventBus(clock)
    stream = stream_over(bus, replay_size=3)
    for _ in range(6):
        publish(stream, bus, "call_started", {"call_id": "c"})
    client = stream.attach(ADMIN, last_event_id=1)
    publish(stream, bus, "call_started", {"call_id": "c"})
    first, live = (json.loads(f) for f in client.take())
    assert first["type"] == "resync_required"
    assert first["data"] == {"last_event_id": 1, "oldest_event_id": 4, "newest_event_id": 6}
    assert live["id"] == 7


async def test_resume_while_events_flow_has_no_gap_and_no_duplicate() -> None:
    bus = EventBus(clock)
    stream = stream_over(bus)
    stream.start()
    try:
        first = stream.attach(ADMIN)
        seen: list[int] = []
        for n in range(200):
            bus.publish("call_started", {"call_id": f"c{n}"})
            if n == 80:
                await asyncio.sleep(0)  # a turn for the fan-out: it takes what is queued
                seen = ids_of(first.take())
                stream.detach(first)
            if n % 7 == 0:
                await asyncio.sleep(0)  # a turn for the fan-out while events flow
        await eventually(lambda: stream.last_id == 200)  # the fan-out has the rest too
        again = stream.attach(ADMIN, last_event_id=seen[-1])
        after = bus.publish("call_started", {"call_id": "after"})
        await eventually(lambda: stream.last_id == after.id)
        resumed = ids_of(again.take())
        assert seen + resumed == list(range(1, 202))
    finally:
        await stream.stop()


def test_a_client_that_cannot_keep_up_is_closed_and_others_are_not() -> None:
    bus = EventBus(clock)
    stream = stream_over(bus, client_queue_size=5)
    slow, fast = stream.attach(ADMIN), stream.attach(ADMIN)
    received = 0
    for n in range(20):
        publish(stream, bus, "call_started", {"call_id": f"c{n}"})
        received += len(fast.take())  # the fast client's writer keeps up
    assert received == 20
    assert slow.close_code == CLOSE_TOO_SLOW
    assert "too slow" in slow.close_reason
    assert slow.closed.is_set() and slow.pending() == 0
    assert fast.close_code is None


def test_a_replay_backlog_does_not_count_against_the_live_bound() -> None:
    bus = EventBus(clock)
    stream = stream_over(bus, client_queue_size=2)
    for n in range(10):
        publish(stream, bus, "call_started", {"call_id": f"c{n}"})
    client = stream.attach(ADMIN, last_event_id=0)
    publish(stream, bus, "call_started", {"call_id": "live"})
    assert client.close_code is None
    assert ids_of(client.take()) == list(range(1, 12))


async def test_the_stream_survives_the_bus_dropping_it() -> None:
    bus = EventBus(clock)
    stream = stream_over(bus, bus_queue_size=3, watch_seconds=0.01)
    stream.start()
    try:
        client = stream.attach(ADMIN)
        bus.publish("call_started", {"call_id": "a"})
        await eventually(lambda: client.pending() == 1)
        for n in range(10):  # without yielding: the fan-out's bus queue overflows
            bus.publish("call_started", {"call_id": f"lost{n}"})
        await eventually(lambda: stream.events_lost == 1)  # noticed, subscribed again
        last = bus.publish("call_started", {"call_id": "b"})
        await eventually(lambda: stream.last_id == last.id)
        frames = [json.loads(f) for f in client.take()]
        types = [f["type"] for f in frames]
        assert types[0] == "call_started" and "resync_required" in types
        assert frames[-1]["data"] == {"call_id": "b"}
        assert stream.events_lost == 1
    finally:
        await stream.stop()


async def test_stop_closes_every_client_going_away() -> None:
    bus = EventBus(clock)
    stream = stream_over(bus)
    stream.start()
    client = stream.attach(ADMIN)
    await stream.stop()
    assert client.close_code == 1001


async def test_viewer_of_an_operator_user_has_their_operator_id() -> None:
    async def operator_of(user_id: str) -> str | None:
        return "op-a" if user_id == "u-a" else None

    stream = EventStream(EventBus(clock), tracker(), StreamSettings(), operator_of)
    user = User(
        "u-a", "a", "a@example.com", "A", Role.OPERATOR, "g1", True, 0, "", clock(), clock()
    )
    claims = TokenClaims("u-a", "jti", clock(), clock(), 0)
    viewer = await stream.viewer(Principal(user, claims))
    assert viewer == OP_A


def test_offer_after_close_is_ignored() -> None:
    client = StreamClient(ADMIN, None, 2)
    client.close(4008, "too slow")
    client.offer("x")
    assert client.pending() == 0


@pytest.mark.parametrize(("size", "header"), [(5, b"\x81\x05"), (300, b"\x81\x7e\x01\x2c")])
def test_ws_text_frame_header(size: int, header: bytes) -> None:
    wire = ws_text_frame("a" * size)
    assert wire == header + b"a" * size


def test_ws_text_frame_64_bit_length() -> None:
    wire = ws_text_frame("a" * 70_000)
    assert wire[:2] == b"\x81\x7f" and int.from_bytes(wire[2:10]) == 70_000


def test_frames_go_straight_to_the_socket_until_it_is_full() -> None:
    written: list[bytes] = []
    room = [2]

    def sink(wire: bytes) -> bool:
        if room[0] == 0:
            return False
        room[0] -= 1
        written.append(wire)
        return True

    client = StreamClient(ADMIN, None, 10, sink=sink)
    for n in range(4):
        client.offer(f"f{n}")
    assert written == [ws_text_frame("f0"), ws_text_frame("f1")]
    room[0] = 5
    client.offer("f4")  # f2, f3 still queued: f4 must wait behind them
    assert client.take() == ["f2", "f3", "f4"]
    client.writing = True
    client.offer("f5")  # the writer is still sending: no overtaking
    assert client.take() == ["f5"]
    client.writing = False
    client.offer("f6")
    assert written[-1] == ws_text_frame("f6")


async def test_the_fan_out_lets_other_work_run_between_turns_of_clients() -> None:
    bus = EventBus(clock)
    stream = stream_over(bus)
    clients = [stream.attach(ADMIN) for _ in range(FAN_OUT_TURN * 2 + 1)]
    stream.start()
    try:
        bus.publish("call_started", {"call_id": "c1"})
        offered: list[int] = []
        while not offered or offered[-1] < len(clients):
            await asyncio.sleep(0)  # other work: it sees the fan-out part way
            offered.append(sum(client.pending() for client in clients))
        assert [n for n in offered if 0 < n < len(clients)] == [FAN_OUT_TURN, 2 * FAN_OUT_TURN]
    finally:
        await stream.stop()


async def test_clients_coming_and_going_between_turns_miss_nothing_and_get_nothing_twice() -> None:
    bus = EventBus(clock)
    stream = stream_over(bus)
    clients = [stream.attach(ADMIN) for _ in range(FAN_OUT_TURN * 2)]
    stream.start()
    try:
        bus.publish("call_started", {"call_id": "c1"})
        while clients[0].pending() == 0:  # noqa: ASYNC110 - yields to the fan-out, no wait
            await asyncio.sleep(0)
        assert clients[-1].pending() == 0  # between two turns
        stream.detach(clients[-1])  # goes before its turn: not offered the event
        resumed = stream.attach(ADMIN, last_event_id=0)  # comes: gets it from the replay
        bus.publish("call_started", {"call_id": "c2"})
        await eventually(lambda: clients[-2].pending() == 2)
        assert ids_of(resumed.take()) == [1, 2]
        assert ids_of(clients[0].take()) == [1, 2]
        assert clients[-1].pending() == 0
    finally:
        await stream.stop()


async def test_events_queued_while_the_fan_out_was_busy_go_out_in_one_write() -> None:
    bus = EventBus(clock)
    stream = stream_over(bus)
    writes: list[bytes] = []
    supervisor_writes: list[bytes] = []
    stream.attach(ADMIN).sink = lambda wire: writes.append(wire) is None
    stream.attach(SUP_G2).sink = lambda wire: supervisor_writes.append(wire) is None
    stream.start()
    try:
        for operator in ("op-a", "op-c", "op-a"):  # op-c: group g2's; queued, no await yet
            bus.publish("operator_status_changed", {"operator_id": operator, "status": "busy"})
        await eventually(lambda: stream.last_id == 3)
        await eventually(lambda: len(writes) == 1)
        frames = [entry.wire for entry in stream._buffer.after(0) or []]
        assert writes == [b"".join(frames)]
        assert supervisor_writes == [frames[1]]  # only what that viewer may see
    finally:
        await stream.stop()


# --- the flush window ---------------------------------------------------------------------------
class HeldWindow:
    """The fan-out's sleep: each flush window stays open until the test closes it."""

    def __init__(self) -> None:
        self.opened: list[float] = []  # the seconds asked for, one per window
        self._close = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.opened.append(seconds)
        await self._close.wait()
        self._close.clear()

    def close(self) -> None:
        self._close.set()


def windowed_stream(bus: EventBus, window: HeldWindow) -> EventStream:
    settings = StreamSettings(flush_seconds=0.1)
    return EventStream(bus, tracker(), settings, no_operator, sleep=window)


def recording_sink(client: StreamClient) -> list[bytes]:
    writes: list[bytes] = []
    client.sink = lambda wire: writes.append(wire) is None
    return writes


def frames_in(writes: list[bytes]) -> list[bytes]:
    """The WebSocket frames a series of writes carried (small unmasked text frames)."""
    stream, frames = b"".join(writes), []
    while stream:
        assert stream[0] == 0x81 and stream[1] < 126
        frames.append(stream[2 : 2 + stream[1]])
        stream = stream[2 + stream[1] :]
    return frames


async def test_events_published_within_the_flush_window_go_out_in_one_write() -> None:
    bus, window = EventBus(clock), HeldWindow()
    stream = windowed_stream(bus, window)
    admin = stream.attach(ADMIN)
    writes = recording_sink(admin)
    stream.start()
    try:
        bus.publish("call_started", {"call_id": "c1"})
        await eventually(lambda: window.opened == [0.1])  # the fan-out holds c1 back
        for n in (2, 3):  # published while the window is open, with the loop running
            bus.publish("call_started", {"call_id": f"c{n}"})
            await asyncio.sleep(0)
        assert writes == [] and stream.last_id == 0  # not sent, not in the replay yet
        window.close()
        await eventually(lambda: stream.last_id == 3)
        assert writes == [b"".join(entry.wire for entry in stream._buffer.after(0) or [])]
        assert [json.loads(f)["id"] for f in frames_in(writes)] == [1, 2, 3]
    finally:
        await stream.stop()


async def test_flushes_keep_the_order_of_events() -> None:
    bus, window = EventBus(clock), HeldWindow()
    stream = windowed_stream(bus, window)
    writes = recording_sink(stream.attach(ADMIN))
    stream.start()
    try:
        for flush in range(3):
            for n in range(4):
                bus.publish("call_started", {"call_id": f"c{flush}-{n}"})
                await asyncio.sleep(0)
            await eventually(lambda flush=flush: len(window.opened) == flush + 1)
            window.close()
            await eventually(lambda flush=flush: len(writes) == flush + 1)
        sent = [json.loads(f) for f in frames_in(writes)]
        assert [f["id"] for f in sent] == list(range(1, 13))
        assert [f["data"]["call_id"] for f in sent][4:6] == ["c1-0", "c1-1"]
    finally:
        await stream.stop()


async def test_resuming_while_a_flush_is_held_misses_nothing_and_gets_nothing_twice() -> None:
    bus, window = EventBus(clock), HeldWindow()
    stream = windowed_stream(bus, window)
    first = stream.attach(ADMIN)
    stream.start()
    try:
        bus.publish("call_started", {"call_id": "c1"})
        await eventually(lambda: len(window.opened) == 1)
        window.close()
        await eventually(lambda: first.pending() == 1)
        seen = ids_of(first.take())
        bus.publish("call_started", {"call_id": "c2"})  # held in the second window ...
        await eventually(lambda: len(window.opened) == 2)
        stream.detach(first)  # ... while the client drops and comes back
        again = stream.attach(ADMIN, last_event_id=seen[-1])
        newcomer = stream.attach(ADMIN)  # told last_event_id = stream.last_id, which is 1
        assert stream.last_id == 1 and again.pending() == 0
        bus.publish("call_started", {"call_id": "c3"})
        window.close()
        await eventually(lambda: stream.last_id == 3)
        assert seen + ids_of(again.take()) == [1, 2, 3]
        assert ids_of(newcomer.take()) == [2, 3]
        late = stream.attach(ADMIN, last_event_id=1)  # after the flush: from the replay
        assert ids_of(late.take()) == [2, 3]
    finally:
        await stream.stop()


def test_the_flush_window_is_a_setting() -> None:
    assert stream_settings(EventsSettings()).flush_seconds == 0.1
    assert stream_settings(EventsSettings(flush_seconds=0)).flush_seconds == 0
    with pytest.raises(ValueError, match="flush_seconds"):
        EventsSettings(flush_seconds=-1)


def test_the_flush_window_widens_with_the_crowd_of_clients() -> None:
    def window_with(clients: int, **settings: Any) -> float:
        stream = stream_over(EventBus(clock), **settings)
        for _ in range(clients):
            stream.attach(MANAGER)
        return stream.flush_window()

    # 4,000 writes a second at most: 0.1 s holds up to 400 clients, 1,000 need 0.25 s.
    assert window_with(10, flush_seconds=0.1) == 0.1
    assert window_with(1000, flush_seconds=0.1) == 0.25
    assert window_with(5000, flush_seconds=0.1) == MAX_FLUSH_SECONDS
    assert window_with(1000, flush_seconds=0.1, writes_per_second=0) == 0.1
    assert window_with(1000, flush_seconds=0) == 0  # no window stays no window


async def test_no_window_sends_each_event_as_soon_as_the_fan_out_takes_it() -> None:
    bus = EventBus(clock)
    window = HeldWindow()
    settings = StreamSettings(flush_seconds=0)
    stream = EventStream(bus, tracker(), settings, no_operator, sleep=window)
    writes = recording_sink(stream.attach(ADMIN))
    stream.start()
    try:
        bus.publish("call_started", {"call_id": "c1"})
        await eventually(lambda: len(writes) == 1)
        assert window.opened == []
    finally:
        await stream.stop()


def test_callback_events_are_seen_as_their_queue_and_operator_calls_are() -> None:
    t = tracker()
    requested = t.audience(
        "callback_requested", {"callback_id": "cb", "call_id": "c9", "queue_id": "q-sales"}
    )
    assert may_see(SUP_G2, requested) and not may_see(SUP_G1, requested)
    assert not may_see(OP_A, requested) and may_see(MANAGER, requested)
    dialing = t.audience(
        "callback_dialing", {"callback_id": "cb", "call_id": "c9", "operator_id": "op-a"}
    )
    assert may_see(OP_A, dialing) and may_see(SUP_G1, dialing) and may_see(SUP_G2, dialing)
    # a callback with no call record yet still reaches its queue's supervisors
    orphan = t.audience(
        "callback_cancelled", {"callback_id": "cb2", "call_id": None, "queue_id": "q-support"}
    )
    assert may_see(SUP_G1, orphan) and not may_see(SUP_G2, orphan)

"""`/ws/events` through the real app: authentication, role filtering, resume, slow clients."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from callcenterd import keys
from callcenterd.api import ws as ws_module
from callcenterd.events.bus import BusEvent, EventBus
from callcenterd.events.stream import CLOSE_TOO_SLOW, control_frame
from tests.api.conftest import ADMIN_PASSWORD, Actor, ClientFactory, bearer, login
from tests.eventually import eventually
from tests.ws_events import EventCollector, drain, events_socket

WS = "/ws/events"


def bus_of(client: TestClient[Any, Any]) -> EventBus:
    bus: EventBus = client.app[keys.SERVICES].bus
    return bus


async def in_the_replay_buffer(client: TestClient[Any, Any], event_id: int) -> None:
    """Once the fan-out has taken the event (a resume is answered from its buffer)."""
    stream = client.app[keys.SERVICES].events_stream
    await eventually(lambda: stream.last_id == event_id)


async def connect(client: TestClient[Any, Any], path: str = WS) -> EventCollector:
    return EventCollector(await client.ws_connect(path))


async def authed(client: TestClient[Any, Any], actor: Actor, **auth: Any) -> EventCollector:
    events = await connect(client)
    answer = await events.auth(actor.token, **auth)
    assert answer["type"] == "auth_ok", answer
    return events


async def operator_id_of(client: TestClient[Any, Any], admin: Actor, user_id: str) -> str:
    response = await client.get(f"/api/admin/users/{user_id}/operator", headers=admin.headers)
    assert response.status == 200, await response.text()
    found: str = (await response.json())["id"]
    return found


# --- authentication ------------------------------------------------------------------------------
async def test_auth_by_message_then_events(client: TestClient[Any, Any], admin: Actor) -> None:
    events = await connect(client)
    answer = await events.auth(admin.token)
    assert answer["type"] == "auth_ok"
    assert answer["data"]["user_id"] == admin.user["id"]
    assert answer["data"]["role"] == "admin"
    published = bus_of(client).publish("call_started", {"call_id": "c1", "caller_number": "100"})
    event = await events.next_event()
    assert event == {
        "id": published.id,
        "type": "call_started",
        "timestamp": published.timestamp,
        "data": {"call_id": "c1", "caller_number": "100"},
    }
    assert event["timestamp"].endswith("Z")


async def test_auth_by_query_parameter(client: TestClient[Any, Any], admin: Actor) -> None:
    events = await connect(client, f"{WS}?token={admin.token}")
    assert (await events.next_frame())["type"] == "auth_ok"
    bus_of(client).publish("call_started", {"call_id": "c1"})
    assert (await events.next_event())["data"] == {"call_id": "c1"}


async def test_api_prefix_is_not_a_websocket(client: TestClient[Any, Any]) -> None:
    # The contract has the stream at /ws/events only.
    response = await client.get("/api/ws/events")
    assert response.status == 404


async def test_no_auth_in_time_closes_4001(make_client: ClientFactory) -> None:
    client = await make_client(events={"auth_timeout_seconds": 0.2})
    events = await connect(client)
    msg = await events.ws.receive(timeout=3)
    assert msg.type is aiohttp.WSMsgType.CLOSE
    assert events.ws.close_code == 4001
    assert "timed out" in str(msg.extra)


async def test_bad_token_closes_4001(client: TestClient[Any, Any]) -> None:
    events = await connect(client)
    await events.send(type="auth", token="not-a-jwt")
    msg = await events.ws.receive(timeout=3)
    assert msg.type is aiohttp.WSMsgType.CLOSE
    assert events.ws.close_code == 4001
    assert msg.extra == "Invalid token"


async def test_first_message_must_be_auth(client: TestClient[Any, Any]) -> None:
    events = await connect(client)
    await events.send(type="ping")
    assert await events.close_code() == 4001


@pytest.mark.parametrize("last_event_id", ["minus-one", "-1", str(2**63), "1e3"])
async def test_bad_query_parameter_closes_4001(
    client: TestClient[Any, Any], admin: Actor, last_event_id: str
) -> None:
    # A good token, so the id alone is what is refused.
    events = await connect(client, f"{WS}?token={admin.token}&last_event_id={last_event_id}")
    assert await events.close_code() == 4001


async def test_revoked_token_is_refused(client: TestClient[Any, Any], admin: Actor) -> None:
    token = await login(client, "admin", "admin-pass")
    response = await client.post("/api/auth/logout", headers=bearer(token))
    assert response.status == 200
    events = await connect(client)
    await events.send(type="auth", token=token)
    msg = await events.ws.receive(timeout=3)
    assert events.ws.close_code == 4001
    assert "revoked" in str(msg.extra)


async def test_logout_closes_the_open_socket_of_that_token_only(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    token = await login(client, "admin", "admin-pass")
    leaving = await connect(client)
    assert (await leaving.auth(token))["type"] == "auth_ok"
    staying = await authed(client, admin)
    response = await client.post("/api/auth/logout", headers=bearer(token))
    assert response.status == 200
    assert await leaving.close_code(within=3) == 4001
    bus_of(client).publish("call_started", {"call_id": "after-logout"})
    assert (await staying.next_event("call_started"))["data"]["call_id"] == "after-logout"


async def test_deactivated_user_is_disconnected_4003(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> None:
    manager, admin = actors["manager"], actors["admin"]
    events = await authed(client, manager)
    response = await client.put(
        f"/api/admin/users/{manager.user['id']}", json={"is_active": False}, headers=admin.headers
    )
    assert response.status == 200, await response.text()
    assert await events.close_code() == 4003


# --- role filtering ------------------------------------------------------------------------------
async def test_each_role_sees_its_own_scope(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> None:
    admin = actors["admin"]
    mine = await operator_id_of(client, admin, actors["operator"].user["id"])
    other = str(uuid.uuid4())  # an operator of no group
    sockets = {role: await authed(client, actor) for role, actor in actors.items()}
    bus = bus_of(client)
    bus.publish("operator_status_changed", {"operator_id": other, "status": "busy"})
    bus.publish("operator_status_changed", {"operator_id": mine, "status": "busy"})
    bus.publish("call_started", {"call_id": "c-other"})
    bus.publish("call_ringing", {"call_id": "c-other", "operator_id": other})
    bus.publish("call_ended", {"call_id": "c-other", "status": "completed"})
    bus.publish("call_started", {"call_id": "c-mine"})
    bus.publish("call_ringing", {"call_id": "c-mine", "operator_id": mine})
    bus.publish("call_answered", {"call_id": "c-mine", "operator_id": mine})
    bus.publish("call_ended", {"call_id": "c-mine", "status": "completed"})
    bus.publish("queue_stats", {"queues": []})

    def seen(frames: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [
            (f["type"], f["data"].get("call_id") or f["data"].get("operator_id", ""))
            for f in frames
        ]

    everything = await sockets["admin"].collect(10)
    assert len(everything) == 10
    assert seen(await sockets["manager"].collect(10)) == seen(everything)
    # The supervisor's group is the operator's: their status, their call (from the ring on).
    supervised = [*await sockets["supervisor"].collect(5), *await sockets["supervisor"].quiet()]
    assert seen(supervised) == [
        ("operator_status_changed", mine),
        ("call_ringing", "c-mine"),
        ("call_answered", "c-mine"),
        ("call_ended", "c-mine"),
        ("queue_stats", ""),
    ]
    own = [*await sockets["operator"].collect(4), *await sockets["operator"].quiet()]
    assert seen(own) == [
        ("operator_status_changed", mine),
        ("call_ringing", "c-mine"),
        ("call_answered", "c-mine"),
        ("call_ended", "c-mine"),
    ]


# --- subscriptions, ping -------------------------------------------------------------------------
async def test_subscribe_narrows_and_unknown_names_are_reported(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    events = await authed(client, admin)
    await events.send(type="subscribe", events=["call_ended", "no_such_event"])
    error = await events.next_frame()
    assert error["type"] == "error"
    assert error["data"]["code"] == "WS_UNKNOWN_EVENT" and error["data"]["field"] == "events"
    assert "no_such_event" in error["data"]["detail"]
    assert await events.next_frame() == {"type": "subscribed", "data": {"events": ["call_ended"]}}
    bus = bus_of(client)
    bus.publish("call_started", {"call_id": "c1"})
    bus.publish("call_ended", {"call_id": "c1"})
    assert (await events.next_event())["type"] == "call_ended"
    await events.send(type="unsubscribe", events=["call_ended"])
    assert (await events.next_frame())["data"] == {"events": []}
    bus.publish("call_ended", {"call_id": "c2"})
    assert await events.quiet() == []


async def test_subscription_in_the_auth_message(client: TestClient[Any, Any], admin: Actor) -> None:
    events = await authed(client, admin, events=["queue_stats"])
    bus_of(client).publish("call_started", {"call_id": "c1"})
    bus_of(client).publish("queue_stats", {"queues": []})
    assert (await events.next_event())["type"] == "queue_stats"


async def test_ping_pong_and_a_known_message_with_bad_fields(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    events = await authed(client, admin)
    await events.send(type="ping")
    assert await events.next_frame() == {"type": "pong", "data": {}}
    await events.send(type="subscribe", events="not-a-list")
    error = await events.next_frame()
    assert error["type"] == "error" and error["data"]["code"] == "WS_BAD_MESSAGE"
    await events.send(type="ping")  # still connected
    assert (await events.next_frame())["type"] == "pong"


# Frames the protocol has no place for close the socket with RFC 6455's codes.
BAD_FRAMES: list[tuple[str, str | bytes, int]] = [
    ("binary", b"\x00\x01", 1003),
    ("not JSON", "not json", 1007),
    ("JSON not an object", "[1, 2, 3]", 1007),
    ("a JSON string", '"ping"', 1007),
    ("no type", '{"token": "x"}', 1007),
    ("unknown type", '{"type": "dance"}', 1007),
    ("a type that is not a string", '{"type": ["ping"]}', 1007),
    ("nested too deep", '{"type": "ping", "x": ' + "[" * 100 + "]" * 100 + "}", 1007),
    ("nested past the parser", "[" * 5000 + "]" * 5000, 1007),
    ("over the size limit", '{"type": "ping", "pad": "' + "x" * (64 * 1024) + '"}', 1009),
]


async def _send_raw(events: EventCollector, frame: str | bytes) -> None:
    if isinstance(frame, bytes):
        await events.ws.send_bytes(frame)
    else:
        await events.ws.send_str(frame)


@pytest.mark.parametrize(
    ("frame", "code"), [(f, c) for _, f, c in BAD_FRAMES], ids=[n for n, _, _ in BAD_FRAMES]
)
async def test_a_bad_frame_after_auth_closes_with_its_code(
    client: TestClient[Any, Any],
    admin: Actor,
    frame: str | bytes,
    code: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = await authed(client, admin)
    with capture_logs() as logged:
        await _send_raw(events, frame)
        assert await events.close_code() == code
        stream = client.app[keys.SERVICES].events_stream
        await eventually(lambda: stream.clients() == [])
    _no_errors_logged(logged, caplog)


@pytest.mark.parametrize(
    ("frame", "code"), [(f, c) for _, f, c in BAD_FRAMES], ids=[n for n, _, _ in BAD_FRAMES]
)
async def test_a_bad_first_frame_closes_with_its_code(
    client: TestClient[Any, Any], frame: str | bytes, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    events = await connect(client)
    with capture_logs() as logged:
        await _send_raw(events, frame)
        assert await events.close_code() == code
    _no_errors_logged(logged, caplog)


async def test_the_size_limit_is_configurable(make_client: ClientFactory) -> None:
    client = await make_client(events={"queue_stats_seconds": 0, "max_message_bytes": 2048})
    events = await connect(client)
    await events.auth(await login(client, "admin", ADMIN_PASSWORD))
    await events.send(type="subscribe", events=["x" * 1500])  # under the limit: answered
    assert (await events.next_frame())["data"]["code"] == "WS_UNKNOWN_EVENT"
    assert (await events.next_frame())["type"] == "subscribed"
    await events.send(type="subscribe", events=["x" * 3000])
    assert await events.close_code() == 1009


def _no_errors_logged(logged: list[dict[str, Any]], caplog: pytest.LogCaptureFixture) -> None:
    assert not [e for e in logged if e["log_level"] in ("error", "critical") or "exc_info" in e]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_an_event_published_while_auth_ok_is_sent_is_not_lost(
    client: TestClient[Any, Any], admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The socket is on the stream before auth_ok leaves: nothing after its id is missed."""
    stream = client.app[keys.SERVICES].events_stream
    published: list[BusEvent] = []

    def auth_ok_then_an_event(kind: str, data: dict[str, Any] | None = None) -> str:
        frame = control_frame(kind, data)
        if kind == "auth_ok" and not published:
            # An event reaching the stream while the auth_ok frame is on its way.
            event = BusEvent(
                stream.last_id + 1,
                "call_started",
                "2026-01-01T00:00:00.000000Z",
                {"call_id": "between"},
            )
            published.append(event)
            stream.deliver(event)
        return frame

    monkeypatch.setattr(ws_module, "control_frame", auth_ok_then_an_event)
    events = await connect(client)
    answer = await events.auth(admin.token)
    assert answer["type"] == "auth_ok"
    assert answer["data"]["last_event_id"] < published[0].id
    event = await events.next_event()
    assert event["id"] == published[0].id and event["data"] == {"call_id": "between"}


async def test_resume_by_query_parameter(client: TestClient[Any, Any], admin: Actor) -> None:
    bus = bus_of(client)
    events = [bus.publish("call_started", {"call_id": f"c{n}"}) for n in range(3)]
    await in_the_replay_buffer(client, events[-1].id)
    socket = await connect(client, f"{WS}?token={admin.token}&last_event_id={events[0].id}")
    assert (await socket.next_frame())["type"] == "auth_ok"
    assert [f["id"] for f in await socket.collect(2)] == [events[1].id, events[2].id]


async def test_resume_from_too_old_an_id_asks_for_resync(
    make_client: ClientFactory, tmp_path: Any
) -> None:
    client = await make_client(events={"replay_buffer_size": 3})
    token = await login(client, "admin", "admin-pass")
    bus = bus_of(client)
    published = [bus.publish("call_started", {"call_id": f"c{n}"}) for n in range(6)]
    await in_the_replay_buffer(client, published[-1].id)
    events = EventCollector(await client.ws_connect(WS))
    await events.auth(token, last_event_id=published[0].id)
    resync = await events.next_frame()
    assert resync["type"] == "resync_required"
    assert resync["data"]["newest_event_id"] == published[-1].id
    bus.publish("call_started", {"call_id": "live"})
    assert (await events.next_event())["data"]["call_id"] == "live"


# --- slow clients --------------------------------------------------------------------------------
async def test_slow_client_is_dropped_4008_while_a_fast_one_gets_everything(
    make_client: ClientFactory,
) -> None:
    client = await make_client(events={"client_queue_size": 8})
    token = await login(client, "admin", "admin-pass")
    bus = bus_of(client)
    stream = client.app[keys.SERVICES].events_stream
    padding = "x" * 256 * 1024  # big frames fill the socket buffers quickly
    async with aiohttp.ClientSession() as session:
        url = str(client.make_url(WS))
        # The slow client reads its auth_ok (it is attached from then on), then nothing.
        slow = EventCollector(await session.ws_connect(url, max_msg_size=0))
        assert (await slow.auth(token))["type"] == "auth_ok"
        (slow_seen,) = await eventually(stream.clients)
        async with events_socket(session, url, token) as fast:
            (fast_seen,) = await eventually(
                lambda: [c for c in stream.clients() if c is not slow_seen]
            )
            reader = asyncio.create_task(drain(fast, 60))
            sent = 0
            for n in range(400):
                bus.publish("call_started", {"call_id": f"c{n}", "pad": padding})
                sent += 1
                # Paced: the fan-out and the fast reader get their turns between events.
                await asyncio.sleep(0.005)
                if slow_seen.close_code is not None:
                    break
            assert slow_seen.close_code == CLOSE_TOO_SLOW, "the slow client was never dropped"
            assert fast_seen.close_code is None
            await eventually(lambda: stream.clients() == [fast_seen])
            bus.publish("call_started", {"call_id": "last"})
            sent += 1
            await eventually(lambda: len(fast.events) == sent, within=30)
            reader.cancel()
            # The fast client received every event, in order, the slow one's fate aside.
            ids = [f["id"] for f in fast.events]
            assert ids == sorted(ids)
            assert fast.events[-1]["data"]["call_id"] == "last"
        # The slow client, reading at last, finds the close code after what was sent.
        assert await slow.close_code(within=30) == CLOSE_TOO_SLOW
        assert "too slow" in slow.close_reason
        assert len(slow.events) < sent


# --- shutdown ------------------------------------------------------------------------------------
async def test_shutdown_closes_sockets_1001(client: TestClient[Any, Any], admin: Actor) -> None:
    url = str(client.make_url(WS))
    async with (
        aiohttp.ClientSession() as session,
        events_socket(session, url, admin.token) as events,
    ):
        closing = asyncio.create_task(client.server.close())
        assert await events.close_code() == 1001
        await closing

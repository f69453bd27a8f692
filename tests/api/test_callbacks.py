"""/api/callbacks: booking a missed call, dedupe, scope, reschedule and cancel, the records and
events they leave, the queue's callback settings, and re-adoption after a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd import keys
from callcenterd.domain.clock import to_iso
from callcenterd.events.bus import Subscription
from callcenterd.routing import RoutingEngine
from tests.api.conftest import Actor
from tests.api.helpers import expect_error, query_db
from tests.api.routing_helpers import execute, insert_call
from tests.conftest import FakeClock

CALLER = "+79005550101"


def engine_of(client: TestClient[Any, Any]) -> RoutingEngine:
    return client.app[keys.SERVICES].dispatcher.engine


@pytest.fixture
async def queue_id(client: TestClient[Any, Any], actors: dict[str, Actor]) -> str:
    """Queue "cb" with the group's operator (1001) as its member: the supervisor's scope."""
    response = await client.post(
        "/api/queues/",
        json={
            "name": "Callbacks",
            "asterisk_name": "cb",
            "members": ["1001"],
            "callback_enabled": True,
            "callback_offer_after": 45,
        },
        headers=actors["admin"].headers,
    )
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return str(body["id"])


def missed_call(client: TestClient[Any, Any], clock: FakeClock, queue_id: str) -> str:
    return insert_call(
        client, clock.now - timedelta(minutes=5), status="missed", queue_id=queue_id,
        caller=CALLER, reason="abandoned",
    )  # fmt: skip


async def book(
    client: TestClient[Any, Any], actor: Actor, body: dict[str, Any], status: int = 201
) -> dict[str, Any]:
    response = await client.post("/api/callbacks/", json=body, headers=actor.headers)
    assert response.status == status, await response.text()
    found: dict[str, Any] = await response.json()
    return found


def drained(subscription: Subscription) -> list[tuple[str, dict[str, Any]]]:
    found = []
    while not subscription.queue.empty():
        event = subscription.queue.get_nowait()
        found.append((event.type, event.data))
    return found


async def test_the_queue_keeps_its_callback_settings(
    client: TestClient[Any, Any], actors: dict[str, Actor], queue_id: str
) -> None:
    response = await client.get(f"/api/queues/{queue_id}", headers=actors["admin"].headers)
    queue = await response.json()
    assert (queue["callback_enabled"], queue["callback_offer_after"]) == (True, 45)
    config = engine_of(client).queues[queue_id].config
    assert (config.callback_enabled, config.callback_offer_after) == (True, 45.0)
    response = await client.put(
        f"/api/queues/{queue_id}",
        json={"callback_enabled": None, "callback_offer_after": 90},
        headers=actors["admin"].headers,
    )
    assert response.status == 200, await response.text()
    config = engine_of(client).queues[queue_id].config
    assert (config.callback_enabled, config.callback_offer_after) == (None, 90.0)
    response = await client.put(
        f"/api/queues/{queue_id}",
        json={"callback_offer_after": 7200},
        headers=actors["admin"].headers,
    )
    await expect_error(response, 422, "DB_003")


async def test_a_supervisor_turns_a_missed_call_into_a_callback(
    client: TestClient[Any, Any], actors: dict[str, Actor], queue_id: str, clock: FakeClock
) -> None:
    origin = missed_call(client, clock, queue_id)
    events = client.app[keys.SERVICES].bus.subscribe()
    callback = await book(client, actors["supervisor"], {"call_id": origin})
    assert callback["status"] == "pending"
    assert (callback["queue_id"], callback["number"]) == (queue_id, CALLER)
    assert callback["origin_call_id"] == origin
    assert callback["requested_by"] == actors["supervisor"].user["id"]
    # The engine holds it in line, without a channel
    entry = engine_of(client).calls[callback["call_id"]]
    assert entry.callback is not None and entry.callback.id == callback["id"]
    assert engine_of(client).queue_position(callback["call_id"]) == 1
    # Its own call record, and both timelines name it
    record = query_db(
        client, "SELECT routed_by, status, caller_number FROM calls WHERE id = ?",
        (callback["call_id"],),
    )  # fmt: skip
    assert tuple(record[0]) == ("callback", "incoming", CALLER)
    for call_id in (origin, callback["call_id"]):
        response = await client.get(f"/api/calls/{call_id}", headers=actors["admin"].headers)
        kinds = [event["kind"] for event in (await response.json())["events"]]
        assert "callback_requested" in kinds, (call_id, kinds)
    published = drained(events)
    requested = [data for kind, data in published if kind == "callback_requested"]
    assert requested and requested[0]["callback_id"] == callback["id"]
    assert requested[0]["queue_id"] == queue_id


async def test_one_pending_callback_per_number_and_queue(
    client: TestClient[Any, Any], actors: dict[str, Actor], queue_id: str, clock: FakeClock
) -> None:
    origin = missed_call(client, clock, queue_id)
    await book(client, actors["admin"], {"call_id": origin})
    response = await client.post(
        "/api/callbacks/", json={"call_id": origin}, headers=actors["admin"].headers
    )
    await expect_error(response, 409, "DB_004")
    response = await client.post(
        "/api/callbacks/",
        json={"queue_id": queue_id, "number": CALLER},
        headers=actors["manager"].headers,
    )
    await expect_error(response, 409, "DB_004")
    # another number in the same queue is fine
    await book(client, actors["manager"], {"queue_id": queue_id, "number": "+79005550102"})


async def test_only_missed_calls_and_known_ones(
    client: TestClient[Any, Any], actors: dict[str, Actor], queue_id: str, clock: FakeClock
) -> None:
    completed = insert_call(client, clock.now, status="completed", queue_id=queue_id)
    response = await client.post(
        "/api/callbacks/", json={"call_id": completed}, headers=actors["admin"].headers
    )
    await expect_error(response, 409, "DB_004")
    response = await client.post(
        "/api/callbacks/", json={"call_id": "nope"}, headers=actors["admin"].headers
    )
    await expect_error(response, 404, "DB_002")
    for body in ({}, {"queue_id": queue_id}, {"call_id": completed, "number": "1"}):
        response = await client.post("/api/callbacks/", json=body, headers=actors["admin"].headers)
        await expect_error(response, 422, "DB_003")
    response = await client.post(
        "/api/callbacks/",
        json={"queue_id": "nope", "number": "1"},
        headers=actors["admin"].headers,
    )
    await expect_error(response, 422, "DB_003")
    response = await client.post(
        "/api/callbacks/",
        json={"queue_id": queue_id, "number": "1"},
        headers=actors["operator"].headers,
    )
    await expect_error(response, 403, "AUTH_003")


async def test_a_supervisor_sees_and_books_only_their_groups_queues(
    client: TestClient[Any, Any], actors: dict[str, Actor], queue_id: str
) -> None:
    response = await client.post(
        "/api/queues/",
        json={"name": "Elsewhere", "asterisk_name": "elsewhere"},
        headers=actors["admin"].headers,
    )
    other_queue = (await response.json())["id"]
    response = await client.post(
        "/api/callbacks/",
        json={"queue_id": other_queue, "number": "1"},
        headers=actors["supervisor"].headers,
    )
    await expect_error(response, 403, "AUTH_003")
    elsewhere = await book(client, actors["admin"], {"queue_id": other_queue, "number": "1"})
    mine = await book(client, actors["supervisor"], {"queue_id": queue_id, "number": "2"})
    response = await client.get("/api/callbacks/", headers=actors["supervisor"].headers)
    assert [c["id"] for c in (await response.json())["items"]] == [mine["id"]]
    response = await client.get(
        f"/api/callbacks/{elsewhere['id']}", headers=actors["supervisor"].headers
    )
    await expect_error(response, 404, "DB_002")
    response = await client.post(
        f"/api/callbacks/{elsewhere['id']}/cancel", headers=actors["supervisor"].headers
    )
    await expect_error(response, 404, "DB_002")
    # an operator reads only the callbacks they served: none yet
    response = await client.get("/api/callbacks/", headers=actors["operator"].headers)
    assert (await response.json())["items"] == []
    response = await client.get("/api/callbacks/", headers=actors["admin"].headers)
    assert {c["id"] for c in (await response.json())["items"]} == {elsewhere["id"], mine["id"]}


async def test_list_filters(
    client: TestClient[Any, Any], actors: dict[str, Actor], queue_id: str, clock: FakeClock
) -> None:
    first = await book(client, actors["admin"], {"queue_id": queue_id, "number": "1"})
    two_days_ago = to_iso(clock.now - timedelta(days=2))
    execute(client, "UPDATE callbacks SET created_at = ? WHERE id = ?", (two_days_ago, first["id"]))
    second = await book(client, actors["admin"], {"queue_id": queue_id, "number": "2"})
    await client.post(f"/api/callbacks/{first['id']}/cancel", headers=actors["admin"].headers)

    async def listed(**params: str) -> list[str]:
        response = await client.get(
            "/api/callbacks/", params=params, headers=actors["admin"].headers
        )
        assert response.status == 200, await response.text()
        return [c["id"] for c in (await response.json())["items"]]

    assert await listed() == [second["id"], first["id"]]
    assert await listed(status="cancelled") == [first["id"]]
    assert await listed(status="pending", queue_id=queue_id) == [second["id"]]
    assert await listed(queue_id="other") == []
    today = clock.now.date().isoformat()
    assert await listed(date_from=today) == [second["id"]]
    assert await listed(date_to=(clock.now - timedelta(days=1)).date().isoformat()) == [first["id"]]
    response = await client.get(
        "/api/callbacks/", params={"status": "lost"}, headers=actors["admin"].headers
    )
    await expect_error(response, 422, "DB_003")


async def test_reschedule_keeps_the_place_and_cancel_ends_it(
    client: TestClient[Any, Any], actors: dict[str, Actor], queue_id: str, clock: FakeClock
) -> None:
    callback = await book(client, actors["admin"], {"queue_id": queue_id, "number": "1"})
    later = (clock.now + timedelta(hours=2)).astimezone(UTC)
    events = client.app[keys.SERVICES].bus.subscribe()
    response = await client.put(
        f"/api/callbacks/{callback['id']}",
        json={"scheduled_at": later.isoformat()},
        headers=actors["supervisor"].headers,
    )
    assert response.status == 200, await response.text()
    rescheduled = await response.json()
    assert datetime.fromisoformat(rescheduled["scheduled_at"]) == later
    assert rescheduled["place_at"] == callback["place_at"]
    entry = engine_of(client).calls[callback["call_id"]]
    assert entry.retry_pending and entry.retry_at == later.timestamp()
    assert ("callback_scheduled", rescheduled["id"]) in [
        (kind, data["callback_id"]) for kind, data in drained(events)
    ]

    response = await client.post(
        f"/api/callbacks/{callback['id']}/cancel", headers=actors["manager"].headers
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["status"] == "cancelled"
    assert callback["call_id"] not in engine_of(client).calls
    await client.app[keys.SERVICES].dispatcher.settled()
    record = query_db(
        client, "SELECT status, reason FROM calls WHERE id = ?", (callback["call_id"],)
    )
    assert tuple(record[0]) == ("missed", "callback_cancelled")
    assert "callback_cancelled" in [kind for kind, _ in drained(events)]
    for method, path, body in (
        ("POST", f"/api/callbacks/{callback['id']}/cancel", None),
        ("PUT", f"/api/callbacks/{callback['id']}", {"scheduled_at": later.isoformat()}),
    ):
        response = await client.request(method, path, json=body, headers=actors["admin"].headers)
        await expect_error(response, 409, "DB_004")
    # cancelled: the number may book again
    await book(client, actors["admin"], {"queue_id": queue_id, "number": "1"})


async def test_pending_callbacks_survive_a_restart_with_their_place_and_time(
    client: TestClient[Any, Any],
    make_client: Any,
    actors: dict[str, Actor],
    queue_id: str,
    clock: FakeClock,
) -> None:
    later = clock.now + timedelta(hours=1)
    first = await book(client, actors["admin"], {"queue_id": queue_id, "number": "1"})
    clock.advance(seconds=30)
    second = await book(
        client,
        actors["admin"],
        {"queue_id": queue_id, "number": "2", "scheduled_at": later.isoformat()},
    )
    # the first one was being dialed when the daemon stopped
    execute(client, "UPDATE callbacks SET status = 'dialing' WHERE id = ?", (first["id"],))
    again = await make_client()
    engine = engine_of(again)
    first_entry = engine.calls[first["call_id"]]
    second_entry = engine.calls[second["call_id"]]
    assert first_entry.arrived_at == datetime.fromisoformat(first["place_at"]).timestamp()
    assert engine.queue_position(first["call_id"]) == 1
    assert engine.queue_position(second["call_id"]) == 2
    assert second_entry.retry_pending and second_entry.retry_at == later.timestamp()
    response = await again.get(f"/api/callbacks/{first['id']}", headers=actors["admin"].headers)
    assert (await response.json())["status"] == "pending"


async def test_a_callback_conversation_cut_by_a_stop_is_closed_as_lost(
    client: TestClient[Any, Any], make_client: Any, actors: dict[str, Actor], queue_id: str
) -> None:
    callback = await book(client, actors["admin"], {"queue_id": queue_id, "number": "1"})
    # as the daemon leaves it when it stops while the callback's caller talks
    execute(client, "UPDATE callbacks SET status = 'completed' WHERE id = ?", (callback["id"],))
    execute(client, "UPDATE calls SET status = 'answered' WHERE id = ?", (callback["call_id"],))
    again = await make_client()
    assert callback["call_id"] not in engine_of(again).calls
    record = query_db(
        again, "SELECT status, reason FROM calls WHERE id = ?", (callback["call_id"],)
    )
    assert tuple(record[0]) == ("completed", "lost")

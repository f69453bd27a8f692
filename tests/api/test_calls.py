"""/api/calls: the page envelope, filters, who sees which calls, the timeline, changes made
by hand, and the indexes behind the filters."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd import keys
from callcenterd.contract.routing import CallItem
from callcenterd.domain.clock import to_iso
from callcenterd.store.call_queries import CallFilter, CallQueries, CallScope
from tests.api.conftest import Actor
from tests.api.helpers import database_file, expect_error, query_db
from tests.api.routing_helpers import insert_call, insert_event, make_operator, operator_of
from tests.conftest import FakeClock

ITEM_KEYS = {
    "id",
    "channel_id",
    "caller_number",
    "called_number",
    "operator_id",
    "operator_name",
    "queue_id",
    "status",
    "start_time",
    "answer_time",
    "end_time",
    "duration",
    "recording_url",
    "notes",
    "wait_seconds",
    "reason",
}


def z(moment: datetime) -> str:
    return to_iso(moment)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def page(client: TestClient[Any, Any], actor: Actor, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/calls/", params=params, headers=actor.headers)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["items"]]


@pytest.fixture
def t0(clock: FakeClock) -> datetime:
    """Ten days ago at 00:00 UTC (the app's zone here): a quiet day to fill with calls."""
    return (clock() - timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)


# --- the envelope --------------------------------------------------------------------------
async def test_pagination_envelope(
    client: TestClient[Any, Any], actors: dict[str, Actor], t0: datetime
) -> None:
    admin = actors["admin"]
    made = [insert_call(client, t0 + timedelta(minutes=i), status="missed") for i in range(7)]
    newest_first = list(reversed(made))
    expected = [
        ({"limit": 3}, newest_first[:3], 1),
        ({"limit": 3, "skip": 3}, newest_first[3:6], 2),
        ({"limit": 3, "skip": 6}, newest_first[6:], 3),
        ({"limit": 3, "skip": 7}, [], 3),
        ({"limit": 3, "skip": 4}, newest_first[4:7], 2),
    ]
    for params, want, page_no in expected:
        body = await page(client, admin, **params)
        assert set(body) == {"items", "total", "page", "pages"}
        assert (body["total"], body["page"], body["pages"]) == (7, page_no, 3), params
        assert ids(body) == want, params
    body = await page(client, admin)
    assert (body["total"], body["page"], body["pages"], len(body["items"])) == (7, 1, 1, 7)
    for item in body["items"]:
        assert set(item) >= ITEM_KEYS
    body = await page(client, admin, status="answered")
    assert (body["total"], body["page"], body["pages"], body["items"]) == (0, 1, 0, [])
    for bad in ({"limit": 0}, {"limit": 1001}, {"skip": -1}, {"status": "lost"}):
        response = await client.get("/api/calls/", params=bad, headers=admin.headers)
        await expect_error(response, 422, "DB_003")


async def test_items_carry_names_recording_and_wait(
    client: TestClient[Any, Any], actors: dict[str, Actor], t0: datetime
) -> None:
    admin = actors["admin"]
    operator = operator_of(client, actors["operator"].user["id"])
    recorded = insert_call(
        client, t0, operator_id=operator["id"], wait=12.5, talk=190, recording="rec-1", notes="ok"
    )
    plain = insert_call(client, t0 + timedelta(minutes=1), status="missed", wait=40)
    body = await page(client, admin)
    items = {item["id"]: item for item in body["items"]}
    item = items[recorded]
    assert item["operator_name"] == "Operator One"
    assert item["recording_url"] == f"/api/calls/{recorded}/recording"
    assert (item["wait_seconds"], item["duration"], item["notes"]) == (12.5, 190, "ok")
    assert at(item["start_time"]) == t0
    assert at(item["answer_time"]) == t0 + timedelta(seconds=12.5)
    assert items[plain]["recording_url"] is None and items[plain]["operator_name"] is None


async def test_list_items_are_the_detail_fields(
    client: TestClient[Any, Any], actors: dict[str, Actor], t0: datetime
) -> None:
    """List items are rendered by SQLite, details by pydantic: they must say the same."""
    admin = actors["admin"]
    operator = operator_of(client, actors["operator"].user["id"])
    made = [
        insert_call(client, t0, operator_id=operator["id"], wait=12.5, recording="r", rating=4),
        insert_call(client, t0 + timedelta(microseconds=123), status="missed", wait=0.125),
        insert_call(client, t0 + timedelta(seconds=1, microseconds=400000), status="incoming"),
        insert_call(client, t0 + timedelta(minutes=1), notes='quote " and \\ and ünïcode'),
    ]
    items = {item["id"]: item for item in (await page(client, admin))["items"]}
    assert set(items) == set(made)
    for call_id in made:
        response = await client.get(f"/api/calls/{call_id}", headers=admin.headers)
        detail = await response.json()
        assert items[call_id] == {key: detail[key] for key in items[call_id]}
        assert set(items[call_id]) == set(CallItem.model_fields)


# --- filters -------------------------------------------------------------------------------
async def test_filters(
    client: TestClient[Any, Any], actors: dict[str, Actor], t0: datetime
) -> None:
    admin = actors["admin"]
    a = operator_of(client, actors["operator"].user["id"])["id"]
    b = (await make_operator(client, admin, "op_b", "1002"))["id"]
    response = await client.post(
        "/api/queues/", json={"name": "Q", "asterisk_name": "q"}, headers=admin.headers
    )
    queue = (await response.json())["id"]
    day2 = t0 + timedelta(days=1)
    c1 = insert_call(client, t0 + timedelta(hours=9), operator_id=a, queue_id=queue)
    c2 = insert_call(client, t0 + timedelta(hours=10), operator_id=b)
    c3 = insert_call(client, t0 + timedelta(hours=12), status="missed", queue_id=queue)
    c4 = insert_call(client, day2 + timedelta(hours=1), operator_id=a)
    c5 = insert_call(client, day2 + timedelta(hours=2), status="incoming", queue_id=queue)

    async def found(**params: Any) -> set[str]:
        return set(ids(await page(client, admin, **params)))

    assert await found(operator_id=a) == {c1, c4}
    assert await found(operator_id=b) == {c2}
    assert await found(status="completed") == {c1, c2, c4}
    assert await found(status="incoming") == {c5}
    assert await found(queue_id=queue) == {c1, c3, c5}
    assert await found(queue_id=queue, status="missed") == {c3}
    # A date is a whole local day; an instant is inclusive at both ends.
    first_day = t0.date().isoformat()
    assert await found(date_from=first_day, date_to=first_day) == {c1, c2, c3}
    assert await found(date_from=(day2.date()).isoformat()) == {c4, c5}
    assert await found(date_to=first_day, operator_id=a) == {c1}
    assert await found(
        date_from=z(t0 + timedelta(hours=10)), date_to=z(t0 + timedelta(hours=12))
    ) == {c2, c3}
    # Naive times are the configured zone's (UTC in this app).
    assert await found(date_from=(t0 + timedelta(hours=11)).strftime("%Y-%m-%dT%H:%M:%S")) == {
        c3,
        c4,
        c5,
    }
    for bad in (
        {"date_from": "yesterday"},
        {"date_from": z(day2), "date_to": first_day},
    ):
        response = await client.get("/api/calls/", params=bad, headers=admin.headers)
        await expect_error(response, 422, "DB_003")
    response = await client.get(
        "/api/calls/", params={"date_from": z(day2), "date_to": first_day}, headers=admin.headers
    )
    assert (await response.json())["field"] == "date_to"


# --- who sees what -------------------------------------------------------------------------
@pytest.fixture
async def scoped(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    group: dict[str, Any],
    t0: datetime,
) -> dict[str, str]:
    """Sales: A (the operator actor) and B; Support: C. Queues: sales (B), support (C)."""
    admin = actors["admin"]
    support = await client.post(
        "/api/admin/groups", json={"name": "Support"}, headers=admin.headers
    )
    support_id = (await support.json())["id"]
    a = operator_of(client, actors["operator"].user["id"])["id"]
    await make_operator(client, admin, "op_b", "1002", group["id"])
    c = (await make_operator(client, admin, "op_c", "1003", support_id))["id"]
    queues = {}
    for name, member in (("sales", "1002"), ("support", "1003"), ("none", None)):
        body: dict[str, Any] = {"name": name, "asterisk_name": name}
        if member:
            body["members"] = [member]
        response = await client.post("/api/queues/", json=body, headers=admin.headers)
        queues[name] = (await response.json())["id"]
    at = [t0 + timedelta(minutes=i) for i in range(5)]
    return {
        # A answered.
        "k1": insert_call(client, at[0], operator_id=a, queue_id=queues["none"]),
        # A was rung, C answered.
        "k2": insert_call(client, at[1], operator_id=c, queue_id=queues["support"], tried=(a,)),
        # Support's own call.
        "k3": insert_call(client, at[2], operator_id=c, queue_id=queues["support"]),
        # Missed in a queue with a Sales member.
        "k4": insert_call(client, at[3], status="missed", queue_id=queues["sales"]),
        # Waiting in a queue without members.
        "k5": insert_call(client, at[4], status="incoming", queue_id=queues["none"]),
    }


async def test_list_scope_per_role(
    client: TestClient[Any, Any], actors: dict[str, Actor], scoped: dict[str, str]
) -> None:
    expected = {
        "admin": {"k1", "k2", "k3", "k4", "k5"},
        "manager": {"k1", "k2", "k3", "k4", "k5"},
        "supervisor": {"k1", "k2", "k4"},
        "operator": {"k1", "k2"},
    }
    names = {call_id: name for name, call_id in scoped.items()}
    for role, want in expected.items():
        body = await page(client, actors[role])
        assert {names[i] for i in ids(body)} == want, role
        assert body["total"] == len(want), role
    # Filters narrow the scope, never widen it.
    body = await page(client, actors["operator"], status="completed")
    assert {names[i] for i in ids(body)} == {"k1", "k2"}
    c = query_db(client, "SELECT operator_id FROM calls WHERE id = ?", (scoped["k3"],))[0][0]
    assert ids(await page(client, actors["supervisor"], operator_id=c)) == [scoped["k2"]]


async def test_detail_scope_and_timeline(
    client: TestClient[Any, Any], actors: dict[str, Actor], scoped: dict[str, str], t0: datetime
) -> None:
    a = operator_of(client, actors["operator"].user["id"])["id"]
    k2 = scoped["k2"]
    insert_event(client, k2, t0 + timedelta(minutes=1), "started", channel_id="ch")
    insert_event(client, k2, t0 + timedelta(minutes=1, seconds=2), "ringing", a, leg_id="l1")
    insert_event(
        client, k2, t0 + timedelta(minutes=1, seconds=17), "leg_ended", a, outcome="no_answer"
    )
    response = await client.get(f"/api/calls/{k2}", headers=actors["operator"].headers)
    assert response.status == 200, await response.text()
    detail = await response.json()
    assert set(detail) >= ITEM_KEYS
    assert detail["operators_tried"][0] == a and len(detail["operators_tried"]) == 2
    assert [(e["kind"], e["operator_id"]) for e in detail["events"]] == [
        ("started", None),
        ("ringing", a),
        ("leg_ended", a),
    ]
    assert detail["events"][2]["data"] == {"outcome": "no_answer"}
    assert at(detail["events"][0]["at"]) == t0 + timedelta(minutes=1)

    hidden = {"operator": ("k3", "k4", "k5"), "supervisor": ("k3", "k5")}
    for role, names in hidden.items():
        for name in names:
            response = await client.get(f"/api/calls/{scoped[name]}", headers=actors[role].headers)
            await expect_error(response, 404, "DB_002")
    for role in ("admin", "manager"):
        response = await client.get(f"/api/calls/{scoped['k5']}", headers=actors[role].headers)
        assert response.status == 200


# --- changes by hand -----------------------------------------------------------------------
async def test_admin_records_a_call(
    client: TestClient[Any, Any], actors: dict[str, Actor], clock: FakeClock
) -> None:
    admin = actors["admin"]
    queue = await client.post(
        "/api/queues/", json={"name": "Q", "asterisk_name": "q"}, headers=admin.headers
    )
    queue_id = (await queue.json())["id"]
    body = {
        "channel_id": "channel-12345",
        "caller_number": "+79001234567",
        "called_number": "1001",
        "queue_id": queue_id,
        "status": "incoming",
    }
    response = await client.post("/api/calls/", json=body, headers=admin.headers)
    assert response.status == 201, await response.text()
    call = await response.json()
    assert (call["status"], call["queue_id"], call["queue_name"]) == ("incoming", queue_id, "Q")
    assert at(call["start_time"]) == clock()
    assert call["routed_by"] == "api" and call["operators_tried"] == []
    assert [(e["kind"], e["data"]) for e in call["events"]] == [
        ("created", {"by": admin.user["id"]})
    ]
    # Now it waits in the queue.
    listed = await (await client.get(f"/api/queues/{queue_id}", headers=admin.headers)).json()
    assert listed["waiting_calls"] == 1

    error = await expect_error(
        await client.post("/api/calls/", json=body, headers=admin.headers), 409, "DB_004"
    )
    assert error["field"] == "channel_id"
    for bad, field in (
        ({**body, "channel_id": "x", "queue_id": "nope"}, "queue_id"),
        ({**body, "channel_id": "x", "status": "completed"}, "status"),
        ({"channel_id": "x"}, "caller_number"),
        ({**body, "channel_id": "x", "operator": "me"}, "operator"),
    ):
        response = await client.post("/api/calls/", json=bad, headers=admin.headers)
        error = await expect_error(response, 422, "DB_003")
        assert error["field"] == field, error


async def test_notes_and_rating(
    client: TestClient[Any, Any], actors: dict[str, Actor], scoped: dict[str, str]
) -> None:
    me = actors["operator"]
    url = f"/api/calls/{scoped['k1']}"
    response = await client.put(
        url, json={"notes": "Клиент доволен", "rating": 5}, headers=me.headers
    )
    assert response.status == 200, await response.text()
    call = await response.json()
    assert (call["notes"], call["rating"]) == ("Клиент доволен", 5)
    # Partial: rating alone keeps the notes; null clears.
    call = await (await client.put(url, json={"rating": None}, headers=me.headers)).json()
    assert (call["notes"], call["rating"]) == ("Клиент доволен", None)
    for bad in ({"rating": 0}, {"rating": 6}, {}, {"id": "x"}, {"notes": "x" * 4001}):
        await expect_error(await client.put(url, json=bad, headers=me.headers), 422, "DB_003")
    # An operator who was only rung for a call may read it, not edit it; nor close calls.
    await expect_error(
        await client.put(f"/api/calls/{scoped['k2']}", json={"notes": "x"}, headers=me.headers),
        403,
        "AUTH_003",
    )
    error = await expect_error(
        await client.put(url, json={"status": "missed"}, headers=me.headers), 403, "AUTH_003"
    )
    assert error["field"] == "status"
    await expect_error(
        await client.put(f"/api/calls/{scoped['k3']}", json={"notes": "x"}, headers=me.headers),
        404,
        "DB_002",
    )
    response = await client.put(
        f"/api/calls/{scoped['k3']}", json={"notes": "admin"}, headers=actors["admin"].headers
    )
    assert (await response.json())["notes"] == "admin"
    audit = query_db(
        client,
        "SELECT actor_id FROM audit_log WHERE entity = 'call' AND entity_id = ?",
        (scoped["k1"],),
    )
    assert len(audit) == 2


async def test_admin_closes_calls_left_open(
    client: TestClient[Any, Any], actors: dict[str, Actor], clock: FakeClock
) -> None:
    admin = actors["admin"]
    a = operator_of(client, actors["operator"].user["id"])["id"]
    start = clock() - timedelta(minutes=10)
    talking = insert_call(client, start, status="answered", operator_id=a, wait=20)
    waiting = insert_call(client, start, status="incoming")

    response = await client.put(
        f"/api/calls/{talking}", json={"status": "completed"}, headers=admin.headers
    )
    assert response.status == 200, await response.text()
    call = await response.json()
    assert call["status"] == "completed" and at(call["end_time"]) == clock()
    assert call["duration"] == 580  # answered 20 s after a start 600 s ago
    assert call["events"][-1]["kind"] == "status_corrected"
    assert call["events"][-1]["data"] == {
        "from": "answered",
        "to": "completed",
        "by": admin.user["id"],
    }
    # Already closed; never answered cannot be completed: the stored call decides (409).
    for call_id, status in ((talking, "missed"), (waiting, "completed")):
        error = await expect_error(
            await client.put(
                f"/api/calls/{call_id}", json={"status": status}, headers=admin.headers
            ),
            409,
            "DB_004",
        )
        assert error["field"] == "status"
    call = await (
        await client.put(f"/api/calls/{waiting}", json={"status": "missed"}, headers=admin.headers)
    ).json()
    assert (call["status"], call["duration"], call["wait_seconds"]) == ("missed", 0, 600.0)
    await expect_error(
        await client.put("/api/calls/nope", json={"notes": "x"}, headers=admin.headers),
        404,
        "DB_002",
    )


# --- indexes -------------------------------------------------------------------------------
def _plan(client: TestClient[Any, Any], sql: str, params: list[Any]) -> list[str]:
    conn = sqlite3.connect(database_file(client))
    try:
        return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("scope", "where"),
    [
        (CallScope(), CallFilter(operator_id="o")),
        (CallScope(), CallFilter(queue_id="q")),
        (CallScope(), CallFilter(status="completed")),
        (CallScope(), CallFilter(status="missed", since=datetime(2026, 1, 1))),
        (CallScope(), CallFilter(since=datetime(2026, 1, 1), until=datetime(2026, 1, 2))),
        (CallScope(operator_id="o"), CallFilter()),
        (CallScope(group_id="g"), CallFilter()),
        (CallScope(group_id="g"), CallFilter(status="missed")),
    ],
)
async def test_filters_use_indexes(
    client: TestClient[Any, Any], scope: CallScope, where: CallFilter
) -> None:
    queries = CallQueries(client.app[keys.SERVICES].db)
    for sql, params in (queries.list_sql(scope, where, 0, 50), queries.count_sql(scope, where)):
        plan = _plan(client, sql, params)
        full_scans = [step for step in plan if step.startswith("SCAN") and "INDEX" not in step]
        assert full_scans == [], plan

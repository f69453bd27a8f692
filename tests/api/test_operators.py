"""/api/operators: lists (supervisors see their group), choosing a status (who may, what the
engine is told, what is shown), and statistics against hand-computed figures.

The app runs in Asia/Vladivostok (UTC+10, no DST): local midnight is 14:00 UTC, so a "today"
computed in UTC would put 13:59:59 and 14:00:00 UTC on the same day."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from callcenterd.analytics.periods import period_bounds
from callcenterd.domain.events import OperatorPresenceSet, OperatorUpserted
from callcenterd.domain.queues import Presence
from tests.api.conftest import PASSWORD, Actor, ClientFactory, login
from tests.api.helpers import expect_error, query_db, user_body
from tests.api.routing_helpers import (
    RecordingPort,
    insert_call,
    insert_event,
    make_operator,
    record_submissions,
    three_operators,
)
from tests.conftest import FakeClock

TZ = "Asia/Vladivostok"
CONTRACT_KEYS = {
    "id",
    "user_id",
    "name",
    "extension",
    "status",
    "group_id",
    "current_calls",
    "calls_today",
    "last_activity",
}


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient[Any, Any]:
    return await make_client(timezone=TZ)


@pytest.fixture
def port(client: TestClient[Any, Any]) -> RecordingPort:
    return record_submissions(client)


@pytest.fixture
async def ops(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    group: dict[str, Any],
    other_group: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """A = the operator actor (1001, group Sales); B = 1002 (Sales); C = 1003 (Support)."""
    return await three_operators(client, actors, group, other_group)


# --- list ----------------------------------------------------------------------------------
async def test_list_shape_filters_and_supervisor_scope(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    ops: dict[str, dict[str, Any]],
    group: dict[str, Any],
    other_group: dict[str, Any],
) -> None:
    admin = actors["admin"]
    response = await client.get("/api/operators/", headers=admin.headers)
    assert response.status == 200
    listed = await response.json()
    assert {o["extension"] for o in listed} == {"1001", "1002", "1003"}
    for item in listed:
        assert set(item) >= CONTRACT_KEYS
    first = next(o for o in listed if o["extension"] == "1001")
    assert first["name"] == "Operator One" and first["id"] == ops["A"]["id"]
    assert (first["status"], first["presence"], first["current_calls"]) == ("offline", "offline", 0)

    by_group = await client.get(
        "/api/operators/", params={"group_id": other_group["id"]}, headers=admin.headers
    )
    assert [o["extension"] for o in await by_group.json()] == ["1003"]

    # A supervisor gets their own group whatever they ask for.
    supervisor = actors["supervisor"]
    for params in ({}, {"group_id": other_group["id"]}):
        response = await client.get("/api/operators/", params=params, headers=supervisor.headers)
        assert response.status == 200
        assert sorted(o["extension"] for o in await response.json()) == ["1001", "1002"]
    manager = await client.get("/api/operators/", headers=actors["manager"].headers)
    assert len(await manager.json()) == 3

    await client.put(
        f"/api/operators/{ops['B']['id']}/status", json={"status": "online"}, headers=admin.headers
    )
    online = await client.get("/api/operators/", params={"status": "online"}, headers=admin.headers)
    assert [o["extension"] for o in await online.json()] == ["1002"]
    error = await expect_error(
        await client.get("/api/operators/", params={"status": "away"}, headers=admin.headers),
        422,
        "DB_003",
    )
    assert error["field"] == "status"


async def test_supervisor_without_group_sees_nobody(
    client: TestClient[Any, Any], actors: dict[str, Actor], ops: dict[str, dict[str, Any]]
) -> None:
    body = user_body("lonely", "supervisor")
    response = await client.post("/api/admin/users", json=body, headers=actors["admin"].headers)
    assert response.status == 201
    token = await login(client, "lonely", "secret-pw")
    response = await client.get("/api/operators/", headers={"Authorization": f"Bearer {token}"})
    assert await response.json() == []
    response = await client.put(
        f"/api/operators/{ops['A']['id']}/status",
        json={"status": "online"},
        headers={"Authorization": f"Bearer {token}"},
    )
    await expect_error(response, 403, "AUTH_003")


# --- status --------------------------------------------------------------------------------
async def test_operator_sets_own_status_and_the_engine_is_told(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    ops: dict[str, dict[str, Any]],
    port: RecordingPort,
) -> None:
    me = actors["operator"]
    url = f"/api/operators/{ops['A']['id']}/status"

    response = await client.put(url, json={"status": "online"}, headers=me.headers)
    assert response.status == 200, await response.text()
    shown = await response.json()
    # The real dispatcher ran the engine before the answer: the shown status is up to date.
    assert (shown["presence"], shown["status"]) == ("online", "online")
    upserted, presence = port.take()
    assert isinstance(upserted, OperatorUpserted)
    assert upserted.operator.id == ops["A"]["id"] and upserted.operator.extension == "1001"
    assert upserted.operator.presence is Presence.ONLINE
    assert presence == OperatorPresenceSet(ops["A"]["id"], Presence.ONLINE, None)

    response = await client.put(url, json={"status": "busy", "reason": "lunch"}, headers=me.headers)
    shown = await response.json()
    assert (shown["presence"], shown["presence_reason"]) == ("paused", "lunch")
    assert (shown["status"], shown["status_reason"]) == ("busy", "lunch")
    assert port.take()[-1] == OperatorPresenceSet(ops["A"]["id"], Presence.PAUSED, "lunch")

    response = await client.put(url, json={"status": "offline", "reason": "x"}, headers=me.headers)
    shown = await response.json()
    assert (shown["presence"], shown["presence_reason"], shown["status"]) == (
        "offline",
        None,
        "offline",
    )
    assert port.take()[-1] == OperatorPresenceSet(ops["A"]["id"], Presence.OFFLINE, None)
    audit = query_db(
        client,
        "SELECT actor_id, changes FROM audit_log WHERE entity = 'operator' AND entity_id = ?"
        " ORDER BY id",
        (ops["A"]["id"],),
    )
    assert len(audit) == 3 and {row["actor_id"] for row in audit} == {me.user["id"]}


async def test_who_may_set_whose_status(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    ops: dict[str, dict[str, Any]],
    port: RecordingPort,
) -> None:
    def url(key: str) -> str:
        return f"/api/operators/{ops[key]['id']}/status"

    body = {"status": "busy"}
    # Operators: themselves only. Supervisors: their group only.
    await expect_error(
        await client.put(url("B"), json=body, headers=actors["operator"].headers), 403, "AUTH_003"
    )
    await expect_error(
        await client.put(url("C"), json=body, headers=actors["supervisor"].headers),
        403,
        "AUTH_003",
    )
    assert port.take() == []
    assert (
        query_db(client, "SELECT presence FROM operators WHERE id = ?", (ops["C"]["id"],))[0][0]
        == "offline"
    )
    for role, key in (("supervisor", "B"), ("manager", "C"), ("admin", "C")):
        response = await client.put(url(key), json=body, headers=actors[role].headers)
        assert response.status == 200, (role, await response.text())
        assert (await response.json())["presence"] == "paused"
    for bad in ({"status": "away"}, {}, {"status": "busy", "reason": ""}):
        await expect_error(
            await client.put(url("A"), json=bad, headers=actors["admin"].headers), 422, "DB_003"
        )
    await expect_error(
        await client.put(
            "/api/operators/nobody/status", json=body, headers=actors["admin"].headers
        ),
        404,
        "DB_002",
    )


# --- statistics ----------------------------------------------------------------------------
@pytest.fixture
def day(clock: FakeClock) -> tuple[datetime, datetime]:
    return period_bounds("today", clock(), ZoneInfo(TZ))


@pytest.fixture
def history(
    client: TestClient[Any, Any], ops: dict[str, dict[str, Any]], day: tuple[datetime, datetime]
) -> dict[str, str]:
    """Hand-made calls around today (local); see the expected figures in the tests."""
    a, b = ops["A"]["id"], ops["B"]["id"]
    start, _ = day
    base = start + timedelta(hours=1)
    at = {
        name: base + timedelta(minutes=10 * i)
        for i, name in enumerate(["c1", "c2", "c3", "c4", "c6", "c7"])
    }
    calls = {
        "c1": insert_call(client, at["c1"], operator_id=a, caller="+1", talk=100, rating=5),
        "c2": insert_call(client, at["c2"], operator_id=a, caller="+2", talk=200, rating=4),
        # B was rung first and did not answer; A answered.
        "c3": insert_call(client, at["c3"], operator_id=a, caller="+3", talk=300, tried=(b,)),
        # A was rung and did not answer.
        "c4": insert_call(client, at["c4"], status="missed", caller="+4", tried=(a,)),
        # The caller of c2 calls back within 24 h: c2 was not resolved first time.
        "c5": insert_call(client, base + timedelta(hours=3), status="missed", caller="+2"),
        # A was busy (rung, refused): offered, not "missed".
        "c6": insert_call(client, at["c6"], status="missed", caller="+6", tried=(a,)),
        # A is talking now: offered, not handled yet.
        "c7": insert_call(client, at["c7"], status="answered", operator_id=a, caller="+7"),
        # Yesterday (local).
        "c8": insert_call(
            client, start - timedelta(hours=2), operator_id=a, caller="+8", talk=50, rating=1
        ),
        "c9": insert_call(client, base, operator_id=b, caller="+9", talk=30),
        # Exactly local midnight (today) and one second before (yesterday).
        "c10": insert_call(client, start, operator_id=b, caller="+10", talk=10),
        "c11": insert_call(client, start - timedelta(seconds=1), operator_id=b, caller="+11"),
    }
    insert_event(client, calls["c3"], at["c3"], "leg_ended", b, outcome="no_answer", leg_id="l1")
    insert_event(client, calls["c4"], at["c4"], "leg_ended", a, outcome="no_answer", leg_id="l2")
    insert_event(client, calls["c6"], at["c6"], "leg_ended", a, outcome="busy", leg_id="l3")
    insert_event(
        client, calls["c8"], start - timedelta(hours=2), "leg_ended", a, outcome="no_answer"
    )
    return calls


async def stats(
    client: TestClient[Any, Any], actor: Actor, operator_id: str, period: str = "today"
) -> dict[str, Any]:
    response = await client.get(
        f"/api/operators/{operator_id}/stats", params={"period": period}, headers=actor.headers
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


FIGURES = (
    "calls_handled",
    "calls_missed",
    "calls_offered",
    "total_talk_time",
    "avg_talk_time",
    "efficiency",
    "first_call_resolution",
    "customer_satisfaction",
)


async def test_stats_today_match_the_hand_computed_figures(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    ops: dict[str, dict[str, Any]],
    history: dict[str, str],
    day: tuple[datetime, datetime],
) -> None:
    admin = actors["admin"]
    figures = await stats(client, admin, ops["A"]["id"])
    # handled c1 c2 c3; missed: c4's unanswered ring; offered c1 c2 c3 c4 c6 c7;
    # first-call resolution: c1 and c3 of 3 (c2's caller called back); ratings 5 and 4;
    # efficiency: answered (c1 c2 c3 and c7, being talked on) / offered = 4 / 6.
    assert {k: figures[k] for k in FIGURES} == {
        "calls_handled": 3,
        "calls_missed": 1,
        "calls_offered": 6,
        "total_talk_time": 600,
        "avg_talk_time": 200,
        "efficiency": 66.7,
        "first_call_resolution": 66.7,
        "customer_satisfaction": 4.5,
    }
    assert figures["period"] == "today"
    start, end = day
    assert (figures["start"], figures["end"]) == (
        start.isoformat().replace("+00:00", "Z"),
        end.isoformat().replace("+00:00", "Z"),
    )
    # B: c9 and c10 (local midnight) today, c11 a second earlier is yesterday's.
    figures = await stats(client, admin, ops["B"]["id"])
    assert {k: figures[k] for k in FIGURES} == {
        "calls_handled": 2,
        "calls_missed": 1,
        "calls_offered": 3,
        "total_talk_time": 40,
        "avg_talk_time": 20,
        "efficiency": 66.7,
        "first_call_resolution": 100.0,
        "customer_satisfaction": None,
    }


async def test_stats_yesterday_and_empty(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    ops: dict[str, dict[str, Any]],
    history: dict[str, str],
) -> None:
    figures = await stats(client, actors["admin"], ops["A"]["id"], "yesterday")
    assert {k: figures[k] for k in FIGURES} == {
        "calls_handled": 1,
        "calls_missed": 1,
        "calls_offered": 1,
        "total_talk_time": 50,
        "avg_talk_time": 50,
        "efficiency": 100.0,
        "first_call_resolution": 100.0,
        "customer_satisfaction": 1.0,
    }
    figures = await stats(client, actors["admin"], ops["C"]["id"], "month")
    assert {k: figures[k] for k in FIGURES} == {
        "calls_handled": 0,
        "calls_missed": 0,
        "calls_offered": 0,
        "total_talk_time": 0,
        "avg_talk_time": 0,
        "efficiency": 0.0,
        "first_call_resolution": 0.0,
        "customer_satisfaction": None,
    }


async def test_list_counts_calls_today_in_the_local_day(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    ops: dict[str, dict[str, Any]],
    history: dict[str, str],
) -> None:
    listed = await (await client.get("/api/operators/", headers=actors["admin"].headers)).json()
    counts = {o["extension"]: (o["calls_today"], o["current_calls"]) for o in listed}
    # A answered c1 c2 c3 c7 today and is on c7 now; B answered c9 and c10 (not c11).
    assert counts == {"1001": (4, 1), "1002": (2, 0), "1003": (0, 0)}


async def test_who_may_see_whose_stats(
    client: TestClient[Any, Any], actors: dict[str, Actor], ops: dict[str, dict[str, Any]]
) -> None:
    def url(key: str) -> str:
        return f"/api/operators/{ops[key]['id']}/stats"

    assert (await client.get(url("A"), headers=actors["operator"].headers)).status == 200
    await expect_error(
        await client.get(url("B"), headers=actors["operator"].headers), 403, "AUTH_003"
    )
    assert (await client.get(url("B"), headers=actors["supervisor"].headers)).status == 200
    await expect_error(
        await client.get(url("C"), headers=actors["supervisor"].headers), 403, "AUTH_003"
    )
    assert (await client.get(url("C"), headers=actors["manager"].headers)).status == 200
    response = await client.get(
        url("A"), params={"period": "decade"}, headers=actors["admin"].headers
    )
    error = await expect_error(response, 422, "DB_003")
    assert error["field"] == "period"


async def test_a_new_operator_is_routable_after_choosing_online(
    client: TestClient[Any, Any], actors: dict[str, Actor], group: dict[str, Any]
) -> None:
    """Created after start-up (the engine never heard of them): going online still works."""
    admin = actors["admin"]
    fresh = await make_operator(client, admin, "fresh", "1009", group["id"])
    token = await login(client, "fresh", PASSWORD)
    response = await client.put(
        f"/api/operators/{fresh['id']}/status",
        json={"status": "online"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 200
    assert (await response.json())["status"] == "online"

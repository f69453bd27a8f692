"""Pauses with reasons (issue 11, part 4): the configured list, who may pause whom, the 422 on
a reason outside the list, the time in each reason in the operator's stats and in operator
activity, and spells that go on across a restart.

The app runs in Asia/Vladivostok (UTC+10): local midnight is 14:00 UTC, so the day edge a
spell is split at is not UTC's."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from callcenterd.analytics.periods import period_bounds
from callcenterd.domain.clock import to_iso
from callcenterd.domain.pauses import DEFAULT_PAUSE_REASONS
from callcenterd.domain.queues import Presence
from tests.api.conftest import Actor, ClientFactory, login
from tests.api.helpers import expect_error, query_db
from tests.api.routing_helpers import (
    RecordingPort,
    execute,
    record_submissions,
    three_operators,
)
from tests.conftest import FakeClock
from tests.ws_events import EventCollector

TZ = "Asia/Vladivostok"


@pytest.fixture
def today(clock: FakeClock) -> datetime:
    """Local midnight today; the clock is set to noon, before anyone logs in (so tokens are
    issued and checked by the same clock), leaving the tests half a day either side."""
    start, _ = period_bounds("today", clock(), ZoneInfo(TZ))
    clock.now = start + timedelta(hours=12)
    return start


@pytest.fixture
async def client(make_client: ClientFactory, today: datetime) -> TestClient[Any, Any]:
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
) -> dict[str, str]:
    """Operator ids: A = the operator actor (group Sales), B = Sales, C = Support."""
    operators = await three_operators(client, actors, group, other_group)
    return {key: operator["id"] for key, operator in operators.items()}


async def put_status(
    client: TestClient[Any, Any], actor: Actor, operator_id: str, **body: Any
) -> Any:
    return await client.put(
        f"/api/operators/{operator_id}/status", json=body, headers=actor.headers
    )


async def pause(
    client: TestClient[Any, Any], actor: Actor, operator_id: str, reason: str | None
) -> dict[str, Any]:
    body = {"status": "busy"} | ({"reason": reason} if reason else {})
    response = await put_status(client, actor, operator_id, **body)
    assert response.status == 200, await response.text()
    shown: dict[str, Any] = await response.json()
    return shown


async def get_json(client: TestClient[Any, Any], actor: Actor, url: str, **params: str) -> Any:
    response = await client.get(url, params=params, headers=actor.headers)
    assert response.status == 200, await response.text()
    return await response.json()


def presence_of(client: TestClient[Any, Any], operator_id: str) -> tuple[str, str | None]:
    row = query_db(
        client, "SELECT presence, presence_reason FROM operators WHERE id = ?", (operator_id,)
    )[0]
    return row["presence"], row["presence_reason"]


def spells(client: TestClient[Any, Any], operator_id: str) -> list[tuple[str, bool]]:
    """(reason, still open) of each stored spell, oldest first."""
    rows = query_db(
        client,
        "SELECT reason, ended_at FROM operator_pause_intervals WHERE operator_id = ? ORDER BY id",
        (operator_id,),
    )
    return [(row["reason"], row["ended_at"] is None) for row in rows]


# --- the list ------------------------------------------------------------------------------
async def test_every_role_reads_the_reasons_and_admins_edit_them(
    client: TestClient[Any, Any], actors: dict[str, Actor], ops: dict[str, str]
) -> None:
    for actor in actors.values():
        body = await get_json(client, actor, "/api/operators/pause-reasons")
        assert body == {
            "reasons": list(DEFAULT_PAUSE_REASONS),
            "system_reasons": ["no_answer", "paused"],
        }
    admin = actors["admin"]
    assert (await get_json(client, admin, "/api/admin/settings"))["pause_reasons"] == list(
        DEFAULT_PAUSE_REASONS
    )

    response = await client.put(
        "/api/admin/settings", json={"pause_reasons": ["lunch", "coaching"]}, headers=admin.headers
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["pause_reasons"] == ["lunch", "coaching"]
    reasons = await get_json(client, actors["operator"], "/api/operators/pause-reasons")
    assert reasons["reasons"] == ["lunch", "coaching"]

    # The new reason may be chosen, a removed one no longer.
    me = actors["operator"]
    assert (await pause(client, me, ops["A"], "coaching"))["presence_reason"] == "coaching"
    error = await expect_error(
        await put_status(client, me, ops["A"], status="busy", reason="training"), 422, "DB_003"
    )
    assert error["field"] == "reason"
    assert presence_of(client, ops["A"]) == ("paused", "coaching")


@pytest.mark.parametrize(
    "reasons",
    [["lunch", "no_answer"], ["paused"], ["lunch", "lunch"], ["Lunch"], [""], ["x" * 41], None],
)
async def test_a_bad_reason_list_is_refused_and_the_stored_one_kept(
    client: TestClient[Any, Any], admin: Actor, reasons: list[str] | None
) -> None:
    response = await client.put(
        "/api/admin/settings", json={"pause_reasons": reasons}, headers=admin.headers
    )
    error = await expect_error(response, 422, "DB_003")
    assert error["field"] == "pause_reasons"
    stored = await get_json(client, admin, "/api/admin/settings")
    assert stored["pause_reasons"] == list(DEFAULT_PAUSE_REASONS)


async def test_other_settings_saved_keep_the_reasons(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    await client.put(
        "/api/admin/settings", json={"pause_reasons": ["meeting"]}, headers=admin.headers
    )
    response = await client.put(
        "/api/admin/settings", json={"queue_timeout": 120}, headers=admin.headers
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["pause_reasons"] == ["meeting"]


# --- choosing a pause ----------------------------------------------------------------------
@pytest.mark.parametrize("reason", ["nap", "no_answer", "paused", "LUNCH"])
async def test_a_reason_outside_the_list_is_a_422_on_reason_and_changes_nothing(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    ops: dict[str, str],
    port: RecordingPort,
    reason: str,
) -> None:
    for actor in (actors["operator"], actors["admin"]):
        response = await put_status(client, actor, ops["A"], status="busy", reason=reason)
        error = await expect_error(response, 422, "DB_003")
        assert error["field"] == "reason"
        assert reason not in str(error["detail"])  # the request is not echoed back
    assert port.take() == []  # the engine was told nothing
    assert presence_of(client, ops["A"]) == ("offline", None)
    assert spells(client, ops["A"]) == []


async def test_a_pause_without_a_reason_is_kept_as_paused(
    client: TestClient[Any, Any], actors: dict[str, Actor], ops: dict[str, str]
) -> None:
    shown = await pause(client, actors["operator"], ops["A"], None)
    assert (shown["presence"], shown["presence_reason"]) == ("paused", None)
    assert (shown["status"], shown["status_reason"]) == ("busy", "paused")
    assert spells(client, ops["A"]) == [("paused", True)]


async def test_who_may_pause_whom(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    ops: dict[str, str],
    port: RecordingPort,
) -> None:
    refused = (("operator", "B"), ("supervisor", "C"))
    for role, key in refused:
        response = await put_status(client, actors[role], ops[key], status="busy", reason="lunch")
        error = await expect_error(response, 403, "AUTH_003")
        assert error["field"] is None
        # A refused actor learns nothing about the reason: 403 before the list is looked at.
        response = await put_status(client, actors[role], ops[key], status="busy", reason="nap")
        await expect_error(response, 403, "AUTH_003")
    assert port.take() == []
    allowed = (("operator", "A"), ("supervisor", "B"), ("manager", "C"), ("admin", "C"))
    for role, key in allowed:
        shown = await pause(client, actors[role], ops[key], "training")
        assert (shown["status"], shown["presence_reason"]) == ("busy", "training"), role
    for key in "ABC":
        assert presence_of(client, ops[key]) == ("paused", "training")
    presences = [event.presence for event in port.take() if hasattr(event, "presence")]
    assert presences == [Presence.PAUSED] * len(allowed)
    response = await put_status(
        client, actors["admin"], "00000000-0000-4000-8000-000000000000", status="busy"
    )
    await expect_error(response, 404, "DB_002")


# --- time in each reason -------------------------------------------------------------------
async def test_stats_and_activity_give_the_seconds_in_each_reason(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    ops: dict[str, str],
    clock: FakeClock,
) -> None:
    me, admin = actors["operator"], actors["admin"]
    await pause(client, me, ops["A"], "lunch")
    clock.advance(seconds=600)
    await pause(client, me, ops["A"], "training")  # a change of reason splits the spell
    clock.advance(seconds=300)
    response = await put_status(client, me, ops["A"], status="online")
    assert response.status == 200
    clock.advance(seconds=100)
    await pause(client, me, ops["A"], "lunch")
    clock.advance(seconds=45)  # still at lunch: the open spell counts up to now
    assert spells(client, ops["A"]) == [("lunch", False), ("training", False), ("lunch", True)]

    figures = await get_json(client, me, f"/api/operators/{ops['A']}/stats")
    assert figures["pause_seconds_by_reason"] == {"lunch": 645, "training": 300}
    assert figures["pause_time"] == 945
    assert figures["logged_in_time"] == 1045  # online or paused: the pause is within it
    yesterday = await get_json(client, me, f"/api/operators/{ops['A']}/stats", period="yesterday")
    assert (yesterday["pause_seconds_by_reason"], yesterday["pause_time"]) == ({}, 0)

    activity = {
        row["operator_id"]: row
        for row in await get_json(client, admin, "/api/dashboard/operator-activity")
    }
    mine = activity[ops["A"]]
    assert (mine["status"], mine["pause_reason"]) == ("busy", "lunch")
    assert mine["pause_seconds_today"] == {"lunch": 645, "training": 300}
    other = activity[ops["B"]]
    assert (other["pause_reason"], other["pause_seconds_today"]) == (None, {})


async def test_a_spell_over_local_midnight_is_split_between_the_days(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    ops: dict[str, str],
    today: datetime,
) -> None:
    start = today
    spells_at = [
        # 23:58 to 00:01 local: 120 s yesterday, 60 s today.
        ("meeting", start - timedelta(seconds=120), start + timedelta(seconds=60)),
        # Ended exactly at midnight: all yesterday.
        ("break", start - timedelta(seconds=30), start),
        # Started exactly at midnight, still open: until now (noon), 12 hours today.
        ("training", start, None),
    ]
    for reason, began, ended in spells_at:
        execute(
            client,
            "INSERT INTO operator_pause_intervals (operator_id, reason, started_at, ended_at)"
            " VALUES (?, ?, ?, ?)",
            (ops["A"], reason, to_iso(began), to_iso(ended) if ended else None),
        )
    me = actors["operator"]
    url = f"/api/operators/{ops['A']}/stats"
    today = await get_json(client, me, url)
    assert today["pause_seconds_by_reason"] == {"meeting": 60, "training": 12 * 3600}
    yesterday = await get_json(client, me, url, period="yesterday")
    assert yesterday["pause_seconds_by_reason"] == {"break": 30, "meeting": 120}


async def test_who_may_see_pause_figures(
    client: TestClient[Any, Any], actors: dict[str, Actor], ops: dict[str, str], clock: FakeClock
) -> None:
    await pause(client, actors["admin"], ops["C"], "lunch")
    clock.advance(seconds=10)
    for role in ("operator", "supervisor"):  # C is of another group, not the operator
        response = await client.get(
            f"/api/operators/{ops['C']}/stats", headers=actors[role].headers
        )
        await expect_error(response, 403, "AUTH_003")
    for role in ("manager", "admin"):
        figures = await get_json(client, actors[role], f"/api/operators/{ops['C']}/stats")
        assert figures["pause_seconds_by_reason"] == {"lunch": 10}


async def test_a_deactivated_operator_stops_counting_pause_time(
    client: TestClient[Any, Any], actors: dict[str, Actor], ops: dict[str, str], clock: FakeClock
) -> None:
    admin = actors["admin"]
    await pause(client, admin, ops["B"], "break")
    clock.advance(seconds=120)
    user_id = query_db(client, "SELECT user_id FROM operators WHERE id = ?", (ops["B"],))[0][0]
    response = await client.put(
        f"/api/admin/users/{user_id}", json={"is_active": False}, headers=admin.headers
    )
    assert response.status == 200, await response.text()
    clock.advance(seconds=600)  # inactive: not routed, not counted as on a break
    figures = await get_json(client, admin, f"/api/operators/{ops['B']}/stats")
    assert figures["pause_seconds_by_reason"] == {"break": 120}
    response = await client.put(
        f"/api/admin/users/{user_id}", json={"is_active": True}, headers=admin.headers
    )
    assert response.status == 200, await response.text()
    clock.advance(seconds=30)  # active again and still paused: counted again
    figures = await get_json(client, admin, f"/api/operators/{ops['B']}/stats")
    assert figures["pause_seconds_by_reason"] == {"break": 150}


# --- a restart -----------------------------------------------------------------------------
async def test_an_open_spell_goes_on_across_a_restart(
    make_client: ClientFactory,
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    ops: dict[str, str],
    clock: FakeClock,
) -> None:
    await pause(client, actors["operator"], ops["A"], "meeting")
    clock.advance(seconds=200)
    await client.close()

    clock.advance(seconds=100)  # the daemon was down for 100 s
    restarted = await make_client(timezone=TZ)
    token = await login(restarted, "admin", "admin-pass")
    admin = Actor("admin", token, actors["admin"].user)
    # The engine resumed with the stored pause: A is still paused, and shown so.
    listed = {row["id"]: row for row in await get_json(restarted, admin, "/api/operators/")}
    assert (listed[ops["A"]]["presence"], listed[ops["A"]]["presence_reason"]) == (
        "paused",
        "meeting",
    )
    assert listed[ops["A"]]["status"] == "busy"
    clock.advance(seconds=50)
    figures = await get_json(restarted, admin, f"/api/operators/{ops['A']}/stats")
    assert figures["pause_seconds_by_reason"] == {"meeting": 350}
    assert spells(restarted, ops["A"]) == [("meeting", True)]

    response = await put_status(restarted, admin, ops["A"], status="online")
    assert response.status == 200, await response.text()
    clock.advance(seconds=500)
    figures = await get_json(restarted, admin, f"/api/operators/{ops['A']}/stats")
    assert figures["pause_seconds_by_reason"] == {"meeting": 350}
    assert spells(restarted, ops["A"]) == [("meeting", False)]


def test_the_day_edge_is_local_midnight(today: datetime) -> None:
    """The premise of the midnight test: local midnight here is not UTC's."""
    assert (today.hour, today.minute) == (14, 0)


# --- the event -----------------------------------------------------------------------------
async def test_status_events_carry_the_pause_reason_and_null_when_not_paused(
    client: TestClient[Any, Any], actors: dict[str, Actor], ops: dict[str, str]
) -> None:
    events = EventCollector(await client.ws_connect("/ws/events"))
    assert (await events.auth(actors["supervisor"].token))["type"] == "auth_ok"
    me = actors["operator"]

    def of_a(frame: dict[str, Any]) -> bool:
        return frame.get("type") == "operator_status_changed" and (
            frame["data"]["operator_id"] == ops["A"]
        )

    seen = []
    for body in (
        {"status": "busy", "reason": "lunch"},
        {"status": "busy", "reason": "after_call_work"},
        {"status": "online"},
        {"status": "busy"},
        {"status": "offline"},
    ):
        response = await put_status(client, me, ops["A"], **body)
        assert response.status == 200, await response.text()
        data = (await events.until(of_a))["data"]
        seen.append((data["status"], data["reason"], data["status_reason"]))
        assert set(data) == {"operator_id", "status", "reason", "status_reason", "timestamp"}
    assert seen == [
        ("busy", "lunch", "lunch"),
        ("busy", "after_call_work", "after_call_work"),
        ("online", None, None),
        ("busy", "paused", "paused"),
        ("offline", None, None),
    ]
    await events.ws.close()

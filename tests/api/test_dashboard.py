"""Statistics endpoints against hand-computed figures.

The app runs in Europe/Berlin, so a local day starts at 23:00 UTC (22:00 in summer) the
evening before: a call at local 00:30 (23:30 UTC in winter) belongs to the next local day.
Calls are placed relative to today's local midnight `m`.

Today's calls (Sales queue `qs`: member A; Support queue `qc`: member C; threshold 20 s,
short abandon 5 s):

    #   local  queue  outcome                       wait  talk  operator
    c1  09:00  qs     completed                     10    100   A
    c2  09:10  qs     completed                     30    200   A
    c3  09:20  qs     missed, abandoned (short)      3
    c4  09:30  qs     missed, abandoned             40          (A rung)
    c5  10:00  qs     missed, timeout               60
    c6  10:05  qs     answered (talking)             5          B
    c7  10:10  qs     missed, no_operator            0
    c8  09:05  qc     completed                     20     60   C
    c10 00:30  qs     completed                      2     52   A
    c9  yesterday 23:30, qs, completed, 2400 s of talk (ends after midnight): yesterday's.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from callcenterd import keys
from callcenterd.analytics.periods import period_bounds
from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.domain.events import CallArrived
from tests.api.conftest import Actor, ClientFactory
from tests.api.helpers import expect_error
from tests.api.routing_helpers import insert_call, three_operators
from tests.conftest import FakeClock

TZ = ZoneInfo("Europe/Berlin")


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient[Any, Any]:
    return await make_client(timezone="Europe/Berlin")


def add_call(
    client: TestClient[Any, Any],
    start: datetime,
    status: str,
    *,
    queue_id: str | None,
    operator_id: str | None = None,
    reason: str | None = None,
    wait: float = 0.0,
    talk: int = 0,
    tried: tuple[str, ...] = (),
    caller: str | None = None,
    rating: int | None = None,
) -> str:
    """One call row as the dispatcher leaves it; each from a new caller unless told."""
    return insert_call(
        client,
        start,
        status=status,
        queue_id=queue_id,
        operator_id=operator_id,
        reason=reason,
        wait=wait,
        talk=talk,
        tried=tried,
        caller=caller or f"+49{uuid.uuid4().int % 10**9}",
        rating=rating,
    )


async def make_queue(
    client: TestClient[Any, Any], admin: Actor, name: str, asterisk: str, members: list[str]
) -> str:
    response = await client.post(
        "/api/queues/",
        json={"name": name, "asterisk_name": asterisk, "members": members},
        headers=admin.headers,
    )
    assert response.status == 201, await response.text()
    queue_id: str = (await response.json())["id"]
    return queue_id


@pytest.fixture
async def world(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    group: dict[str, Any],
    other_group: dict[str, Any],
) -> dict[str, str]:
    """A (the operator actor, Sales), B (Sales), C (Support); queues qs and qc."""
    admin = actors["admin"]
    operators = await three_operators(client, actors, group, other_group)
    ids = {key: operator["id"] for key, operator in operators.items()}
    ids["qs"] = await make_queue(client, admin, "Sales Q", "sales", ["1001"])
    ids["qc"] = await make_queue(client, admin, "Support Q", "support", ["1003"])
    return ids


@pytest.fixture
def midnight(clock: FakeClock) -> datetime:
    """Today's local midnight, in UTC."""
    return period_bounds("today", clock(), TZ)[0]


@pytest.fixture
def history(client: TestClient[Any, Any], world: dict[str, str], midnight: datetime) -> None:
    a, b, c, qs, qc = world["A"], world["B"], world["C"], world["qs"], world["qc"]
    m = midnight

    def at(hours: int, minutes: int = 0) -> datetime:
        return m + timedelta(hours=hours, minutes=minutes)

    add_call(client, at(9), "completed", queue_id=qs, operator_id=a, wait=10, talk=100)
    add_call(client, at(9, 10), "completed", queue_id=qs, operator_id=a, wait=30, talk=200)
    add_call(client, at(9, 20), "missed", queue_id=qs, reason="abandoned", wait=3)
    add_call(client, at(9, 30), "missed", queue_id=qs, reason="abandoned", wait=40, tried=(a,))
    add_call(client, at(10), "missed", queue_id=qs, reason="timeout", wait=60)
    add_call(client, at(10, 5), "answered", queue_id=qs, operator_id=b, wait=5)
    add_call(client, at(10, 10), "missed", queue_id=qs, reason="no_operator", wait=0)
    add_call(client, at(9, 5), "completed", queue_id=qc, operator_id=c, wait=20, talk=60)
    add_call(client, at(0, 30), "completed", queue_id=qs, operator_id=a, wait=2, talk=52)
    add_call(client, at(0, -30), "completed", queue_id=qs, operator_id=a, wait=4, talk=2400)


async def get(
    client: TestClient[Any, Any], actor: Actor, path: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(path, params=params, headers=actor.headers)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def hour(rows: list[dict[str, Any]], label: str) -> dict[str, Any]:
    found = [row for row in rows if row["hour"] == label]
    assert len(found) == 1
    return found[0]


# --- /dashboard/stats ----------------------------------------------------------------------
async def test_dashboard_today_all_groups(
    client: TestClient[Any, Any], actors: dict[str, Actor], history: None
) -> None:
    stats = await get(client, actors["manager"], "/api/dashboard/stats")
    # Entered: c1-c8 and c10 (c9 started yesterday). Answered c1 c2 c6 c8 c10; within 20 s:
    # c1 (10) c6 (5) c8 (20, the threshold itself) c10 (2). Unserved: c4 (abandoned after
    # 40 s) and c5 (timed out); c3 is a short abandon, c7 never waited.
    # Service level 4 / (5 + 2) = 57.1; ASA (10 + 30 + 5 + 20 + 2) / 5 = 13.4 -> 13.
    assert stats["total_calls_today"] == 9
    assert stats["answered_calls_today"] == 5
    assert stats["missed_calls_today"] == 4
    assert stats["service_level"] == 57.1
    assert stats["average_wait_time"] == 13
    assert stats["abandoned_calls"] == 2
    assert stats["abandon_rate"] == 12.5  # (2 - 1 short) / (9 - 1 short)
    assert stats["average_talk_time"] == 103  # (100 + 200 + 60 + 52) / 4
    assert stats["longest_wait_time"] == 60
    assert stats["busiest_hour"] == "09:00"  # c1 c2 c3 c4 c8
    assert stats["total_operators"] == 3
    assert stats["group_id"] is None
    assert stats["period"] == "today"
    trends = stats["call_trends"]
    assert [row["hour"] for row in trends] == [f"{h:02d}:00" for h in range(24)]
    assert hour(trends, "09:00") == {"hour": "09:00", "calls": 5, "answered": 3}
    assert hour(trends, "10:00") == {"hour": "10:00", "calls": 3, "answered": 1}
    # c10 at local 00:30 (23:30 UTC the day before in winter) is today's first hour.
    assert hour(trends, "00:00") == {"hour": "00:00", "calls": 1, "answered": 1}
    assert sum(row["calls"] for row in trends) == 9


async def test_call_spanning_midnight_counts_on_the_day_it_started(
    client: TestClient[Any, Any], actors: dict[str, Actor], history: None
) -> None:
    stats = await get(client, actors["admin"], "/api/dashboard/stats", period="yesterday")
    assert stats["total_calls_today"] == 1
    assert stats["answered_calls_today"] == 1
    assert stats["average_talk_time"] == 2400
    assert stats["busiest_hour"] == "23:00"


async def test_explicit_dates_are_local_days(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    history: None,
    midnight: datetime,
) -> None:
    today = midnight.astimezone(TZ).date()
    stats = await get(
        client,
        actors["admin"],
        "/api/dashboard/stats",
        date_from=today.isoformat(),
        date_to=today.isoformat(),
    )
    assert (stats["period"], stats["total_calls_today"]) == ("custom", 9)
    both = await get(
        client,
        actors["admin"],
        "/api/dashboard/stats",
        date_from=(today - timedelta(days=1)).isoformat(),
        date_to=today.isoformat(),
    )
    assert both["total_calls_today"] == 10
    # An instant range: from local 09:00 to 09:10 inclusive (c1, c8, c2).
    start = (midnight + timedelta(hours=9)).astimezone(TZ).replace(tzinfo=None)
    stats = await get(
        client,
        actors["admin"],
        "/api/dashboard/stats",
        date_from=start.isoformat(),
        date_to=(start + timedelta(minutes=10)).isoformat(),
    )
    assert stats["total_calls_today"] == 3


async def test_supervisor_sees_their_group_only(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    group: dict[str, Any],
    other_group: dict[str, Any],
    history: None,
) -> None:
    supervisor = actors["supervisor"]
    # Sales: queue qs (A is a member) and calls A or B answered: all but c8.
    # Answered c1 c2 c6 c10, within 20 s c1 c6 c10, unserved c4 c5: 3 / 6 = 50 %.
    mine = await get(client, supervisor, "/api/dashboard/stats")
    assert mine["group_id"] == group["id"]
    assert (mine["total_calls_today"], mine["answered_calls_today"]) == (8, 4)
    assert mine["service_level"] == 50.0
    assert mine["total_operators"] == 2
    same = await get(client, supervisor, "/api/dashboard/stats", group_id=group["id"])
    assert same == mine
    await expect_error(
        await client.get(
            "/api/dashboard/stats",
            params={"group_id": other_group["id"]},
            headers=supervisor.headers,
        ),
        403,
        "AUTH_003",
    )
    for path in ("/api/calls/stats", "/api/dashboard/realtime", "/api/dashboard/call-analytics"):
        await expect_error(
            await client.get(
                path, params={"group_id": other_group["id"]}, headers=supervisor.headers
            ),
            403,
            "AUTH_003",
        )
    # A manager may pick any group: Support is queue qc and C's calls: c8 only.
    support = await get(
        client, actors["manager"], "/api/dashboard/stats", group_id=other_group["id"]
    )
    assert (support["total_calls_today"], support["service_level"]) == (1, 100.0)


async def test_no_calls_and_only_abandons(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    world: dict[str, str],
    midnight: datetime,
) -> None:
    empty = await get(client, actors["admin"], "/api/dashboard/stats")
    assert empty["total_calls_today"] == 0
    assert (empty["service_level"], empty["average_wait_time"], empty["abandon_rate"]) == (
        0.0,
        0,
        0.0,
    )
    assert empty["busiest_hour"] is None
    assert len(empty["call_trends"]) == 24
    assert all(row["calls"] == 0 for row in empty["call_trends"])
    # Three days ago: two callers gave up, one after 10 s, one after 2 s (short).
    day = midnight - timedelta(days=3)
    for wait in (10, 2):
        add_call(
            client,
            day + timedelta(hours=15),
            "missed",
            queue_id=world["qs"],
            reason="abandoned",
            wait=wait,
        )
    local_day = day.astimezone(TZ).date().isoformat()
    stats = await get(
        client, actors["admin"], "/api/dashboard/stats", date_from=local_day, date_to=local_day
    )
    assert (stats["total_calls_today"], stats["answered_calls_today"]) == (2, 0)
    assert stats["service_level"] == 0.0  # 0 answered / (0 + 1 unserved)
    assert stats["abandon_rate"] == 100.0  # 1 / (2 - 1 short)
    assert stats["longest_wait_time"] == 10
    assert stats["busiest_hour"] == "15:00"


async def test_validation_errors(client: TestClient[Any, Any], actors: dict[str, Actor]) -> None:
    admin = actors["admin"]
    cases = [
        ({"period": "decade"}, "period"),
        ({"date_from": "2025-03-02", "date_to": "2025-03-01"}, "date_to"),
        ({"date_from": "2024-01-01", "date_to": "2025-06-01"}, "date_to"),
        ({"date_from": "yesterday-ish"}, "date_from"),
        ({"group_id": "no-such-group"}, "group_id"),
    ]
    for params, field in cases:
        for path in ("/api/dashboard/stats", "/api/calls/stats", "/api/dashboard/call-analytics"):
            body = await expect_error(
                await client.get(path, params=params, headers=admin.headers), 422, "DB_003"
            )
            assert body["field"] == field, (path, params, body)
    # date_to alone is a range too: the longest one ending with it.
    for path in ("/api/dashboard/stats", "/api/calls/stats", "/api/dashboard/call-analytics"):
        response = await client.get(path, params={"date_to": "2025-03-01"}, headers=admin.headers)
        assert response.status == 200, (path, await response.text())


# --- /calls/stats and /dashboard/call-analytics -------------------------------------------
async def test_call_stats(
    client: TestClient[Any, Any], actors: dict[str, Actor], world: dict[str, str], history: None
) -> None:
    stats = await get(client, actors["admin"], "/api/calls/stats")
    assert {
        key: stats[key]
        for key in (
            "total_calls",
            "answered_calls",
            "missed_calls",
            "average_duration",
            "average_wait_time",
            "service_level",
            "peak_hour",
        )
    } == {
        "total_calls": 9,
        "answered_calls": 5,
        "missed_calls": 4,
        "average_duration": 103,
        "average_wait_time": 13,
        "service_level": 57.1,
        "peak_hour": "09:00",
    }
    # A answered c1 c2 c10; B c6; C c8.
    # Ties in operator id order.
    tied = [name for _, name in sorted([(world["B"], "User op_b"), (world["C"], "User op_c")])]
    assert [(row["operator_name"], row["calls_count"]) for row in stats["busiest_operators"]] == [
        ("Operator One", 3),
        (tied[0], 1),
        (tied[1], 1),
    ]


async def test_call_analytics(
    client: TestClient[Any, Any], actors: dict[str, Actor], world: dict[str, str], history: None
) -> None:
    body = await get(client, actors["admin"], "/api/dashboard/call-analytics")
    assert hour(body["hourly_distribution"], "09:00") == {
        "hour": "09:00",
        "incoming": 5,
        "answered": 3,
        "missed": 2,
    }
    queues = {row["queue_name"]: row for row in body["queue_performance"]}
    # qs: c1-c7, c10; answered c1 c2 c6 c10, waits 10 30 5 2 -> 11.75 -> 12; SL 3 / 6.
    assert {k: queues["Sales Q"][k] for k in ("calls", "answered", "avg_wait_time")} == {
        "calls": 8,
        "answered": 4,
        "avg_wait_time": 12,
    }
    assert queues["Sales Q"]["service_level"] == 50.0
    assert (queues["Support Q"]["calls"], queues["Support Q"]["service_level"]) == (1, 100.0)
    operators = {row["operator_id"]: row for row in body["operator_summary"]}
    # A: handled c1 c2 c10 (talk 100 200 52 -> 117); offered c1 c2 c4 c10: 3 / 4.
    assert {
        k: operators[world["A"]][k] for k in ("calls_handled", "avg_talk_time", "efficiency")
    } == {
        "calls_handled": 3,
        "avg_talk_time": 117,
        "efficiency": 75.0,
    }
    # B is talking on c6: answered 1 of 1 offered, none handled yet.
    assert (operators[world["B"]]["calls_handled"], operators[world["B"]]["efficiency"]) == (
        0,
        100.0,
    )
    assert operators[world["C"]]["calls_handled"] == 1
    # The supervisor's summary lists their group's operators only.
    mine = await get(client, actors["supervisor"], "/api/dashboard/call-analytics")
    assert {row["operator_id"] for row in mine["operator_summary"]} == {world["A"], world["B"]}
    assert [row["queue_name"] for row in mine["queue_performance"]] == ["Sales Q"]


# --- /queues/{id}/stats --------------------------------------------------------------------
async def test_queue_stats(
    client: TestClient[Any, Any], actors: dict[str, Actor], world: dict[str, str], history: None
) -> None:
    stats = await get(client, actors["supervisor"], f"/api/queues/{world['qs']}/stats")
    assert {
        k: stats[k]
        for k in (
            "calls_entered",
            "calls_answered",
            "calls_abandoned",
            "calls_missed",
            "average_wait_time",
            "max_wait_time",
            "service_level",
        )
    } == {
        "calls_entered": 8,
        "calls_answered": 4,
        "calls_abandoned": 2,
        "calls_missed": 4,
        "average_wait_time": 12,
        "max_wait_time": 60,
        "service_level": 50.0,
    }
    # 09:00: c1 c2 c3 c4, answered c1 c2 waiting 10 and 30 -> 20.
    assert hour(stats["hourly_stats"], "09:00") == {
        "hour": "09:00",
        "calls": 4,
        "answered": 2,
        "avg_wait": 20,
    }
    assert len(stats["hourly_stats"]) == 24
    await expect_error(
        await client.get(
            f"/api/queues/{world['qs']}/stats",
            params={"period": "fortnight"},
            headers=actors["admin"].headers,
        ),
        422,
        "DB_003",
    )


# --- /operators/{id}/stats: occupancy from the presence history ----------------------------
async def test_operator_occupancy_from_presence_history(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    world: dict[str, str],
    clock: FakeClock,
) -> None:
    t0 = clock()
    response = await client.put(
        f"/api/operators/{world['A']}/status",
        json={"status": "online"},
        headers=actors["operator"].headers,
    )
    assert response.status == 200, await response.text()
    add_call(
        client,
        t0 + timedelta(minutes=10),
        "completed",
        queue_id=world["qs"],
        operator_id=world["A"],
        wait=5,
        talk=900,
        rating=4,
    )
    clock.advance(hours=1)
    window = {
        "date_from": to_iso(t0 - timedelta(hours=1)),
        "date_to": to_iso(t0 + timedelta(hours=2)),
    }
    stats = await get(client, actors["operator"], f"/api/operators/{world['A']}/stats", **window)
    # Logged in from t0 to now (one hour; the future does not count), talking 900 s.
    assert stats["logged_in_time"] == 3600
    assert stats["occupancy"] == 25.0
    assert (stats["calls_handled"], stats["customer_satisfaction"]) == (1, 4.0)
    # B never logged in: no presence history to divide by.
    other = await get(client, actors["admin"], f"/api/operators/{world['B']}/stats", **window)
    assert (other["occupancy"], other["logged_in_time"]) == (None, 0)


# --- /dashboard/realtime and operator-activity ---------------------------------------------
async def test_realtime_reads_the_live_routing_state(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    world: dict[str, str],
    other_group: dict[str, Any],
    clock: FakeClock,
) -> None:
    now = clock()
    engine = client.app[keys.SERVICES].dispatcher.engine
    # Two callers waiting in Sales (45 s and 10 s), one in Support (100 s): the engine's own
    # state, fed directly (no telephony in this test).
    for call_id, queue, waited in (
        ("w1", "sales", 45),
        ("w2", "sales", 10),
        ("w3", "support", 100),
    ):
        engine.handle(
            CallArrived(call_id, "+4930123", queue_hint=queue, arrived_at=now.timestamp() - waited),
            now.timestamp(),
        )
    started = now - timedelta(minutes=2)
    add_call(
        client,
        started,
        "answered",
        queue_id=world["qs"],
        operator_id=world["B"],
        wait=3,
    )
    everyone = await get(client, actors["admin"], "/api/dashboard/realtime")
    assert (everyone["queue_waiting"], everyone["longest_wait_time"]) == (3, 100)
    assert everyone["active_calls"] == 1
    assert (
        everyone["operators_offline"] + everyone["operators_online"] + everyone["operators_busy"]
        == 3
    )
    tz = client.app[keys.SETTINGS].tz  # the clock follows real time: 2 min ago may be last hour
    same_hour = started.astimezone(tz).hour == now.astimezone(tz).hour
    assert everyone["current_hour_calls"] == (1 if same_hour else 0)
    sales = await get(client, actors["supervisor"], "/api/dashboard/realtime")
    assert (sales["queue_waiting"], sales["longest_wait_time"]) == (2, 45)
    support = await get(
        client, actors["manager"], "/api/dashboard/realtime", group_id=other_group["id"]
    )
    assert (support["queue_waiting"], support["active_calls"]) == (1, 0)
    queue = await get(client, actors["admin"], f"/api/queues/{world['qs']}/stats")
    assert (queue["waiting_now"], queue["longest_current_wait"]) == (2, 45)

    activity = await get_list(client, actors["supervisor"], "/api/dashboard/operator-activity")
    rows = {row["operator_id"]: row for row in activity}
    assert set(rows) == {world["A"], world["B"]}
    assert rows[world["B"]]["current_call_duration"] == 117  # answered 3 s after 2 min ago
    assert rows[world["B"]]["calls_today"] == (
        1 if (now - timedelta(minutes=2)).astimezone(TZ).date() == now.astimezone(TZ).date() else 0
    )
    assert rows[world["A"]]["current_call_duration"] is None


async def get_list(client: TestClient[Any, Any], actor: Actor, path: str) -> list[dict[str, Any]]:
    response = await client.get(path, headers=actor.headers)
    assert response.status == 200, await response.text()
    body: list[dict[str, Any]] = await response.json()
    return body


# --- /queues/{id}/forecast -----------------------------------------------------------------
async def test_forecast_from_four_weeks_of_history(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    world: dict[str, str],
    midnight: datetime,
) -> None:
    """Each of the last 28 days: 50 calls at local 10:00-10:59, 180 s of talk each, so
    50 calls/hour x 180 s / 3600 s = 2.5 erlangs. Erlang B by recursion for A = 2.5:
    B1 = 2.5 / 3.5 = 0.7143, B2 = 0.4717, B3 = 0.2822, B4 = 0.1499, B5 = 0.0697.
    N = 4: C = 4 x 0.1499 / (4 - 2.5 x 0.8501) = 0.3199, SL = 1 - 0.3199 e^(-1.5 x 20/180)
    = 72.9 %; N = 5: C = 5 x 0.0697 / (5 - 2.5 x 0.9303) = 0.1304,
    SL = 1 - 0.1304 e^(-2.5 x 20/180) = 90.1 % -> 5 operators at 10:00, none elsewhere.
    """
    rows = []
    for day in range(1, 29):
        base = midnight - timedelta(days=day) + timedelta(hours=10)
        base = base.astimezone(TZ).replace(hour=10).astimezone(midnight.tzinfo)
        for n in range(50):
            rows.append(base + timedelta(seconds=60 * n + 5))
    for start in rows:
        add_call(
            client,
            start,
            "completed",
            queue_id=world["qs"],
            operator_id=world["A"],
            wait=4,
            talk=180,
        )
    # Today's calls are not in the sample.
    add_call(
        client, midnight + timedelta(hours=1), "completed", queue_id=world["qs"], wait=1, talk=999
    )
    body = await get(client, actors["manager"], f"/api/queues/{world['qs']}/forecast")
    assert (body["weeks"], body["target_service_level"], body["threshold"]) == (4, 80.0, 20.0)
    assert from_iso(body["end"]) == midnight
    ten = hour(body["hours"], "10:00")
    assert ten["calls_per_hour"] == 50.0
    assert ten["average_handle_time"] == 180.0
    assert ten["traffic"] == 2.5
    assert ten["operators_needed"] == 5
    assert ten["service_level"] == 90.1
    assert hour(body["hours"], "03:00")["operators_needed"] == 0
    assert body["peak_operators_needed"] == 5
    # A stricter target needs more operators.
    strict = await get(
        client,
        actors["manager"],
        f"/api/queues/{world['qs']}/forecast",
        target_service_level=95,
        threshold=10,
    )
    assert hour(strict["hours"], "10:00")["operators_needed"] > 5
    for bad in ({"target_service_level": 100}, {"threshold": -1}, {"weeks": 0}):
        await expect_error(
            await client.get(
                f"/api/queues/{world['qs']}/forecast", params=bad, headers=actors["admin"].headers
            ),
            422,
            "DB_003",
        )

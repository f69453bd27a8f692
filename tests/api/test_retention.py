"""Past statistics answered by the API are the same before and after a retention purge.

Calls of a past fortnight (46 to 32 days ago, local Berlin days) in two queues, answered,
abandoned and timed out, with operators; then the purge with `calls_days = 30` deletes every
one of them (it cuts at a UTC midnight, up to a day off Berlin's: 32 days keeps them older
than the cut at any hour the suite runs). Every figure read from the rollups must answer the
same: the dashboard, the call statistics, the queue statistics and forecast, the call
analytics' hours and queues, and each operator's calls handled. The figures read from call
rows (an operator's legs, offers, rings, ratings) are shown to cover only the calls kept:
that is the documented limit.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from callcenterd import keys
from tests.api.conftest import Actor, ClientFactory
from tests.api.routing_helpers import database_file, insert_call, three_operators
from tests.conftest import FakeClock

TZ = ZoneInfo("Europe/Berlin")


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient[Any, Any]:
    return await make_client(timezone="Europe/Berlin", retention={"calls_days": 30})


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
    clock: FakeClock,
) -> dict[str, str]:
    admin = actors["admin"]
    operators = await three_operators(client, actors, group, other_group)
    ids = {key: operator["id"] for key, operator in operators.items()}
    ids["qs"] = await make_queue(client, admin, "Sales Q", "sales", ["1001", "1002"])
    ids["qc"] = await make_queue(client, admin, "Support Q", "support", ["1003"])
    today = clock().astimezone(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    outcomes = [
        ("completed", "caller_hangup", ids["A"], 12.0, 95),
        ("completed", "operator_hangup", ids["B"], 31.5, 240),
        ("missed", "abandoned", None, 3.0, 0),
        ("missed", "abandoned", None, 44.0, 0),
        ("missed", "timeout", None, 61.0, 0),
        ("completed", "caller_hangup", ids["C"], 18.25, 60),
    ]
    for day in range(32, 47):
        for n, (status, reason, operator, wait, talk) in enumerate(outcomes):
            start = (today - timedelta(days=day)).replace(hour=8 + n, minute=7 * n)
            insert_call(
                client,
                start,
                status=status,
                reason=reason,
                operator_id=operator,
                queue_id=ids["qc"] if operator == ids["C"] else ids["qs"],
                wait=wait + day,
                talk=talk + day,
                caller=f"+4930{day:02d}{n:04d}",
                rating=4 if operator else None,
            )
    # One call kept, today: the purge leaves it.
    insert_call(client, today.replace(hour=9), queue_id=ids["qs"], operator_id=ids["A"])
    return ids


def past_period(clock: FakeClock) -> dict[str, str]:
    today = clock().astimezone(TZ).date()
    return {
        "date_from": (today - timedelta(days=50)).isoformat(),
        "date_to": (today - timedelta(days=29)).isoformat(),
    }


async def read(client: TestClient[Any, Any], admin: Actor, path: str, **query: Any) -> Any:
    response = await client.get(path, params=query, headers=admin.headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def rollup_figures(
    client: TestClient[Any, Any], admin: Actor, world: dict[str, str], clock: FakeClock
) -> dict[str, Any]:
    """Every figure of the past period that comes from the rollups."""
    period = past_period(clock)
    analytics = await read(client, admin, "/api/dashboard/call-analytics", **period)
    return {
        "dashboard": await read(client, admin, "/api/dashboard/stats", **period),
        "calls": await read(client, admin, "/api/calls/stats", **period),
        "sales": await read(client, admin, f"/api/queues/{world['qs']}/stats", **period),
        "support": await read(client, admin, f"/api/queues/{world['qc']}/stats", **period),
        "forecast": await read(client, admin, f"/api/queues/{world['qs']}/forecast", weeks=8),
        "hours": analytics["hourly_distribution"],
        "queues": analytics["queue_performance"],
        "handled": {
            row["operator_id"]: row["calls_handled"] for row in analytics["operator_summary"]
        },
        "operator_handled": {
            op: (await read(client, admin, f"/api/operators/{world[op]}/stats", **period))[
                "calls_handled"
            ]
            for op in ("A", "B", "C")
        },
    }


def call_count(client: TestClient[Any, Any]) -> int:
    conn = sqlite3.connect(database_file(client))
    try:
        return int(conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
    finally:
        conn.close()


async def test_past_figures_are_the_same_after_the_purge(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    world: dict[str, str],
    clock: FakeClock,
) -> None:
    admin = actors["admin"]
    before = await rollup_figures(client, admin, world, clock)
    assert before["dashboard"]["total_calls_today"] == 15 * 6  # the period has its calls
    assert before["calls"]["abandoned_calls"] == 30
    assert before["handled"] == {world["A"]: 15, world["B"]: 15, world["C"]: 15}
    report = await client.app[keys.SERVICES].retention.purge()
    assert report.calls == 90 and call_count(client) == 1
    after = await rollup_figures(client, admin, world, clock)
    assert after == before
    # A rebuild of the rollups (thresholds changed back and forth) keeps the purged days too.
    services = client.app[keys.SERVICES]
    conn = sqlite3.connect(database_file(client))
    conn.execute("DELETE FROM call_stats_definition")
    conn.commit()
    conn.close()
    await services.analytics.prepare()
    assert await rollup_figures(client, admin, world, clock) == before


async def test_figures_from_call_rows_cover_only_the_calls_kept(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    world: dict[str, str],
    clock: FakeClock,
) -> None:
    """The documented limit: an operator's legs, offers and ratings come from call rows."""
    admin = actors["admin"]
    path = f"/api/operators/{world['A']}/stats"
    before = await read(client, admin, path, **past_period(clock))
    assert (before["calls_answered"], before["calls_offered"]) == (15, 15)
    assert before["customer_satisfaction"] is not None
    await client.app[keys.SERVICES].retention.purge()
    after = await read(client, admin, path, **past_period(clock))
    assert after["calls_handled"] == before["calls_handled"] == 15  # rollups
    assert (after["calls_answered"], after["calls_offered"], after["total_talk_time"]) == (0, 0, 0)
    assert after["customer_satisfaction"] is None

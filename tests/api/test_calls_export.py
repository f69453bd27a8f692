"""GET /api/calls/export: the page's filters and scope, CSV rules, streaming many rows."""

from __future__ import annotations

import csv
import io
import sqlite3
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd.domain.clock import to_iso
from callcenterd.store.call_csv import CSV_COLUMNS
from tests.api.conftest import Actor
from tests.api.helpers import database_file, expect_error
from tests.api.routing_helpers import insert_call, make_operator, operator_of
from tests.conftest import FakeClock

HEADER = [name for name, _ in CSV_COLUMNS]


@pytest.fixture
def t0(clock: FakeClock) -> datetime:
    return (clock() - timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)


async def export(
    client: TestClient[Any, Any], actor: Actor, **params: Any
) -> tuple[list[dict[str, str]], str]:
    """The exported rows as dicts (header checked), and the raw text."""
    response = await client.get("/api/calls/export", params=params, headers=actor.headers)
    text = await response.text()
    assert response.status == 200, text
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    lines = list(csv.reader(io.StringIO(text, newline="")))
    assert lines[0] == HEADER
    return [dict(zip(HEADER, line, strict=True)) for line in lines[1:]], text


def ids(rows: list[dict[str, str]]) -> list[str]:
    return [row["id"] for row in rows]


async def test_rows_carry_the_list_items_fields(
    client: TestClient[Any, Any], actors: dict[str, Actor], t0: datetime, clock: FakeClock
) -> None:
    admin = actors["admin"]
    operator = operator_of(client, actors["operator"].user["id"])
    answered = insert_call(
        client, t0, operator_id=operator["id"], wait=12.5, talk=190, recording="r1", rating=4
    )
    missed = insert_call(client, t0 + timedelta(minutes=1), status="missed", wait=40)
    response = await client.get("/api/calls/export", headers=admin.headers)
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="calls-{clock().date().isoformat()}.csv"'
    )
    rows, text = await export(client, admin)
    assert text.endswith("\r\n") and "\r\n" in text.split("\n", 1)[0] + "\n"
    assert ids(rows) == [missed, answered]  # newest first, as the page
    row = rows[1]
    assert row["operator_name"] == "Operator One" and row["status"] == "completed"
    assert (row["duration"], row["wait_seconds"], row["rating"]) == ("190", "12.5", "4")
    assert row["recording_url"] == f"/api/calls/{answered}/recording"
    assert row["start_time"] == to_iso(t0) and row["start_time"].endswith("Z")
    assert datetime.fromisoformat(row["answer_time"]) == t0 + timedelta(seconds=12.5)
    empty = rows[0]
    assert (empty["answer_time"], empty["rating"], empty["recording_url"]) == ("", "", "")
    # The page and the export agree field by field (the page's JSON as the reference).
    page = await (await client.get("/api/calls/", headers=admin.headers)).json()
    item = next(i for i in page["items"] if i["id"] == answered)
    assert datetime.fromisoformat(item["end_time"]) == datetime.fromisoformat(row["end_time"])
    assert item["caller_number"] == row["caller_number"].removeprefix("'")


async def test_filters_are_the_pages(
    client: TestClient[Any, Any], actors: dict[str, Actor], t0: datetime
) -> None:
    admin = actors["admin"]
    operator = operator_of(client, actors["operator"].user["id"])
    queue = await client.post(
        "/api/queues/", json={"name": "Support", "asterisk_name": "support"}, headers=admin.headers
    )
    queue_id = (await queue.json())["id"]
    mine = insert_call(client, t0, operator_id=operator["id"], queue_id=queue_id)
    missed = insert_call(client, t0 + timedelta(hours=1), status="missed", queue_id=queue_id)
    old = insert_call(client, t0 - timedelta(days=3), status="missed")
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({}, [missed, mine, old]),
        ({"status": "missed"}, [missed, old]),
        ({"queue_id": queue_id}, [missed, mine]),
        ({"operator_id": operator["id"]}, [mine]),
        ({"date_from": t0.date().isoformat()}, [missed, mine]),
        ({"date_to": (t0 - timedelta(days=1)).date().isoformat()}, [old]),
        ({"status": "missed", "date_from": t0.date().isoformat(), "format": "csv"}, [missed]),
    ]
    for params, want in cases:
        rows, _ = await export(client, admin, **params)
        assert ids(rows) == want, params


async def test_each_role_exports_only_its_scope(
    client: TestClient[Any, Any], actors: dict[str, Actor], t0: datetime
) -> None:
    admin = actors["admin"]
    own = operator_of(client, actors["operator"].user["id"])
    other = await make_operator(client, admin, "stranger", "1999")
    answered = insert_call(client, t0, operator_id=own["id"])
    rung = insert_call(client, t0 + timedelta(minutes=1), status="missed", tried=(own["id"],))
    foreign = insert_call(client, t0 + timedelta(minutes=2), operator_id=other["id"])
    nobody = insert_call(client, t0 + timedelta(minutes=3), status="missed")
    everything = [nobody, foreign, rung, answered]
    expected = {
        "admin": everything,
        "manager": everything,
        "supervisor": [rung, answered],  # the group's operator was rung or answered
        "operator": [rung, answered],
    }
    for role, want in expected.items():
        rows, _ = await export(client, actors[role])
        assert ids(rows) == want, role
    # Filters narrow the scope, never widen it.
    rows, _ = await export(client, actors["operator"], operator_id=other["id"])
    assert rows == []


async def test_cells_are_quoted_and_defused(
    client: TestClient[Any, Any], actors: dict[str, Actor], t0: datetime
) -> None:
    admin = actors["admin"]
    tricky = {
        '=HYPERLINK("http://x","y")': '\'=HYPERLINK("http://x","y")',
        "+79001234567": "'+79001234567",
        "-2+3": "'-2+3",
        "@SUM(A1)": "'@SUM(A1)",
        "\tTAB": "'\tTAB",
        'plain, with "quotes"\r\nand a line break': 'plain, with "quotes"\r\nand a line break',
        "кириллица ünïcode": "кириллица ünïcode",
        "": "",
    }
    made = {}
    for n, value in enumerate(tricky):
        made[insert_call(client, t0 + timedelta(minutes=n), caller=f"c{n}", notes=value)] = value
    rows, text = await export(client, admin)
    assert len(rows) == len(tricky)
    for row in rows:
        assert row["notes"] == tricky[made[row["id"]]], row["notes"]
        assert not row["caller_number"].startswith("'")
    # Text cells are quoted; an empty text is "" while a missing value is an empty cell.
    empty_notes = next(r for r in rows if made[r["id"]] == "")["id"]
    line = next(ln for ln in text.split("\r\n") if ln.startswith(f'"{empty_notes}"'))
    assert ',"",' in line and ",," in line  # notes "" ; answer_time (NULL) empty


async def test_no_calls_is_the_header_alone(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> None:
    response = await client.get("/api/calls/export", headers=actors["admin"].headers)
    assert response.status == 200
    assert await response.text() == ",".join(HEADER) + "\r\n"


async def test_bad_format_and_filters_answer_422(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> None:
    admin = actors["admin"]
    for params, field in (
        ({"format": "xlsx"}, "format"),
        ({"format": ""}, "format"),
        ({"status": "lost"}, "status"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_from": "2026-03-02", "date_to": "2026-03-01"}, "date_to"),
    ):
        response = await client.get("/api/calls/export", params=params, headers=admin.headers)
        body = await expect_error(response, 422, "DB_003")
        assert body["detail"][0]["loc"][:2] == ["query", field], params


def _bulk_insert(client: TestClient[Any, Any], t0: datetime, count: int) -> list[str]:
    """`count` calls, seven to a start time (ties cross batch edges): newest-first ids."""
    rows = []
    for n in range(count):
        start = to_iso(t0 + timedelta(seconds=n // 7))
        call_id = str(uuid.UUID(int=n))
        rows.append((call_id, f"ch-{n}", f"+7900{n:07d}", "missed", start, start, start, "[]"))
    conn = sqlite3.connect(database_file(client))
    try:
        conn.executemany(
            "INSERT INTO calls (id, channel_id, caller_number, status, start_time, created_at,"
            " updated_at, operators_tried) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.commit()
    finally:
        conn.close()
    return [row[0] for row in sorted(rows, key=lambda r: (r[4], r[0]), reverse=True)]


async def test_many_rows_stream_complete_and_in_order(
    client: TestClient[Any, Any], actors: dict[str, Actor], t0: datetime
) -> None:
    want = _bulk_insert(client, t0, 5000)
    response = await client.get("/api/calls/export", headers=actors["admin"].headers)
    assert response.status == 200
    assert response.headers.get("Transfer-Encoding") == "chunked"
    chunks = [chunk async for chunk, _ in response.content.iter_chunks()]
    assert len(chunks) > 1  # written batch by batch, not as one body
    lines = list(csv.reader(io.StringIO(b"".join(chunks).decode(), newline="")))
    assert lines[0] == HEADER
    got = [line[0] for line in lines[1:]]
    assert len(got) == len(set(got)) == 5000
    assert got == want


async def test_an_export_batch_is_an_index_seek(client: TestClient[Any, Any]) -> None:
    """Keyset, not OFFSET: the continuation walks the start_time index from the cursor."""
    from callcenterd import keys
    from callcenterd.store.call_csv import CSV_LINE_SQL
    from callcenterd.store.call_queries import CallCursor, CallFilter, CallQueries, CallScope

    queries = CallQueries(client.app[keys.SERVICES].db)
    sql, params = queries.batch_sql(
        CallScope(), CallFilter(), CallCursor("2026-01-01T00:00:00.000000Z", "x"), 500, CSV_LINE_SQL
    )
    conn = sqlite3.connect(database_file(client))
    try:
        plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    finally:
        conn.close()
    assert "calls_start" in plan and "SCAN c" not in plan.replace("USING INDEX", ""), plan


async def test_openapi_describes_a_csv_file(client: TestClient[Any, Any]) -> None:
    document = await (await client.get("/openapi.json")).json()
    operation = document["paths"]["/api/calls/export"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"text/csv"}
    assert {p["name"] for p in operation["parameters"]} == {
        "format",
        "operator_id",
        "status",
        "queue_id",
        "date_from",
        "date_to",
    }
    assert "422" in operation["responses"]

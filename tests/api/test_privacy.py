"""POST /api/admin/privacy/erase: a phone number erased from every table, its calls'
recordings deleted through ARI (a real aiohttp server standing in for Asterisk's REST API),
the act audited without the number in clear."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcenterd import keys
from callcenterd.domain.clock import to_iso
from callcenterd.services.retention import AriRecordings
from callcenterd.telephony.ari import AriEndpoint
from callcenterd.telephony.ari_client import AriClient
from callcenterd.telephony.ari_control import AriCallControl
from tests.api.conftest import Actor
from tests.api.helpers import database_file, expect_error
from tests.api.routing_helpers import insert_call
from tests.conftest import FakeClock

NUMBER = "+7 900 123-45-67"
KEY = "79001234567"  # its digits, as callers are matched
OTHER = "+4930555111"
ERASE = "/api/admin/privacy/erase"


def execute(client: TestClient[Any, Any], statement: str, params: tuple[Any, ...] = ()) -> None:
    conn = sqlite3.connect(database_file(client))
    try:
        conn.execute(statement, params)
        conn.commit()
    finally:
        conn.close()


def rows(client: TestClient[Any, Any], statement: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(database_file(client))
    try:
        return conn.execute(statement).fetchall()
    finally:
        conn.close()


def mentions(value: str) -> bool:
    """The number in any form: the separators people write taken out, its digits remain."""
    return KEY in re.sub(r"[\s().+\-]", "", value)


def where_the_number_is(client: TestClient[Any, Any]) -> list[tuple[str, str, str]]:
    """(table, column, value) of every text value in the database holding the number."""
    found = []
    conn = sqlite3.connect(database_file(client))
    try:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in tables:
            cursor = conn.execute(f"SELECT * FROM {table}")
            columns = [d[0] for d in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    text = value if isinstance(value, str) else str(value)
                    if mentions(text):
                        found.append((table, column, text))
    finally:
        conn.close()
    return found


class FakeAri:
    def __init__(self, names: set[str]) -> None:
        self.stored = set(names)
        self.app = web.Application()
        self.app.router.add_delete("/ari/recordings/stored/{name}", self.delete)

    async def delete(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.stored:
            return web.json_response({"message": "Recording not found"}, status=404)
        self.stored.discard(name)
        return web.Response(status=204)


@pytest.fixture
async def fake_ari(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FakeAri]:
    """The erasure's recordings deleted on this server (the daemon's ARI link is not
    connected in these tests)."""
    fake = FakeAri({"rec-1", "rec-other"})
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        endpoint = AriEndpoint(str(server.make_url("")).rstrip("/"), "u", "p", "callcenterd", 2.0)
        control = AriCallControl(AriClient(session, endpoint))
        privacy = client.app[keys.SERVICES].privacy
        monkeypatch.setattr(privacy, "_recordings", AriRecordings(lambda: control))
        yield fake
    await server.close()


@pytest.fixture
async def stored(
    client: TestClient[Any, Any], actors: dict[str, Actor], clock: FakeClock
) -> dict[str, str]:
    """The number wherever the daemon keeps numbers, and another caller's records."""
    admin = actors["admin"]
    response = await client.post(
        "/api/queues/", json={"name": "Q", "asterisk_name": "q"}, headers=admin.headers
    )
    queue_id = (await response.json())["id"]
    # A VIP entry through the API: its audit entry names the number's key too.
    response = await client.put(
        "/api/vip-callers/+79001234567", json={"priority": 9, "note": "key account"},
        headers=admin.headers,
    )  # fmt: skip
    assert response.status == 200, await response.text()
    day = clock() - timedelta(days=3)
    ids = {
        "recorded": insert_call(
            client,
            day,
            caller="+79001234567",
            queue_id=queue_id,
            recording="rec-1",
            notes=f"promised a call back on {NUMBER}",
        ),
        "missed": insert_call(
            client,
            day + timedelta(hours=1),
            status="missed",
            reason="abandoned",
            caller="8 (900) 123-45-67".replace("8 ", "7 "),
            queue_id=queue_id,
        ),
        "other": insert_call(
            client,
            day + timedelta(hours=2),
            caller=OTHER,
            queue_id=queue_id,
            recording="rec-other",
        ),
    }
    # Calls out to the number (a callback's own call): its called number.
    execute(client, "UPDATE calls SET called_number = ? WHERE id = ?", (KEY, ids["missed"]))
    stamp = to_iso(day)
    # Timelines: the number's calls, and another call transferred out to the number.
    for call_id, data in (
        (ids["recorded"], {"channel_id": "ch-1", "caller": "+79001234567"}),
        (ids["other"], {"target": {"type": "external", "number": KEY}, "mode": "blind"}),
        (ids["other"], {"to": int(KEY)}),
        (ids["other"], {"channel_id": "ch-keep"}),
    ):
        execute(
            client,
            "INSERT INTO call_events (call_id, at, kind, data) VALUES (?, ?, 'transferred', ?)",
            (call_id, stamp, json.dumps(data)),
        )
    execute(
        client,
        "INSERT INTO callbacks (id, queue_id, number, status, origin_call_id, place_at,"
        " created_at, updated_at, reason) VALUES ('cb1', ?, '+79001234567', 'completed', ?,"
        " ?, ?, ?, 'answered')",
        (queue_id, ids["missed"], stamp, stamp, stamp),
    )
    execute(
        client,
        "INSERT INTO callbacks (id, queue_id, number, status, place_at, created_at, updated_at)"
        " VALUES ('cb2', ?, ?, 'completed', ?, ?, ?)",
        (queue_id, OTHER, stamp, stamp, stamp),
    )
    outbox = [
        ("sms", "+79001234567", "missed:79001234567", {"text": "We missed your call"}),
        ("webhook", "https://crm.example.com/hook", "wh-1",
         {"body": json.dumps({"event": "call_ended", "caller_number": "+79001234567"})}),
        ("email", "boss@example.com", "mail-1", {"text": f"Missed call from {NUMBER}"}),
        ("email", "boss@example.com", "mail-2", {"text": f"Missed call from {OTHER}"}),
    ]  # fmt: skip
    for kind, recipient, key, content in outbox:
        execute(
            client,
            "INSERT INTO outbox (kind, recipient, idempotency_key, content, state,"
            " next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'sent', ?, ?, ?)",
            (kind, recipient, key, json.dumps(content), stamp, stamp, stamp),
        )
    services = client.app[keys.SERVICES]
    services.dispatcher.last_operators.served("+79001234567", "op-1")
    assert services.vip_callers.priority_of(KEY) == 9
    return ids


async def test_the_number_is_nowhere_in_the_database_afterwards(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    stored: dict[str, str],
    fake_ari: FakeAri,
) -> None:
    assert where_the_number_is(client)  # the scan sees it before
    response = await client.post(
        ERASE, json={"phone_number": "+7 (900) 123 45 67"}, headers=actors["admin"].headers
    )
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert answer["last_digits"] == "67" and KEY not in json.dumps(answer)
    assert {k: v for k, v in answer.items() if k not in ("number_hash", "last_digits")} == {
        "calls": 2,
        "call_events": 3,
        "callbacks": 1,
        "vip_callers": 1,
        "outbox_deleted": 1,
        "outbox_anonymised": 2,
        "audit_log": 1,
        "recordings": 1,
    }
    assert where_the_number_is(client) == []
    # Its recording deleted in Asterisk, the other caller's kept; the name cleared, noted.
    assert fake_ari.stored == {"rec-other"}
    recorded = stored["recorded"]
    assert rows(client, f"SELECT caller_number, recording FROM calls WHERE id = '{recorded}'") == [
        ("erased", None)
    ]
    assert rows(
        client,
        f"SELECT data FROM call_events WHERE call_id = '{recorded}' AND kind = 'recording_deleted'",
    ) == [('{"reason":"erasure"}',)]
    # Everything else as it was.
    other = rows(
        client, f"SELECT caller_number, recording FROM calls WHERE id = '{stored['other']}'"
    )
    assert other == [(OTHER, "rec-other")]
    assert rows(client, "SELECT number FROM callbacks ORDER BY id") == [("erased",), (OTHER,)]
    assert ('{"channel_id": "ch-keep"}',) in rows(client, "SELECT data FROM call_events")
    assert len(rows(client, "SELECT id FROM outbox")) == 3
    # In memory too: no VIP priority, no last operator for the number.
    services = client.app[keys.SERVICES]
    assert services.vip_callers.priority_of(KEY) == 0
    assert services.dispatcher.last_operators.of(KEY) is None


async def test_the_erasure_is_audited_without_the_number(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    stored: dict[str, str],
    fake_ari: FakeAri,
) -> None:
    admin = actors["admin"]
    first = await (
        await client.post(ERASE, json={"phone_number": NUMBER}, headers=admin.headers)
    ).json()
    again = await (
        await client.post(ERASE, json={"phone_number": KEY}, headers=admin.headers)
    ).json()
    # The same number, the same keyed hash; the second time nothing is left to erase.
    assert again["number_hash"] == first["number_hash"]
    assert again["calls"] == again["call_events"] == again["outbox_deleted"] == 0
    entries = rows(
        client,
        "SELECT actor_id, entity_id, changes FROM audit_log WHERE entity = 'privacy'"
        " AND action = 'erase' ORDER BY id",
    )
    assert len(entries) == 2
    actor_id, entity_id, changes = entries[0]
    assert actor_id == admin.user["id"] and entity_id == first["number_hash"]
    recorded = json.loads(changes)
    assert recorded["last_digits"] == "67" and recorded["calls"] == 2
    assert not mentions(changes) and not mentions(entity_id)


async def test_only_admins_may_erase(
    client: TestClient[Any, Any], actors: dict[str, Actor], stored: dict[str, str]
) -> None:
    for role in ("manager", "supervisor", "operator"):
        response = await client.post(
            ERASE, json={"phone_number": NUMBER}, headers=actors[role].headers
        )
        await expect_error(response, 403, "AUTH_003")
    await expect_error(await client.post(ERASE, json={"phone_number": NUMBER}), 401, "AUTH_001")
    assert where_the_number_is(client)  # untouched


@pytest.mark.parametrize(
    "body",
    [
        {"phone_number": "abc"},
        {"phone_number": "12-34"},  # too few digits
        {"phone_number": "+1" + "2" * 25},  # too many
        {"phone_number": "+7 900 123 45 67; DROP"},
        {"phone_number": 79001234567},  # a JSON number, not a string
        {"phone_number": None},
        {},
    ],
)
async def test_a_bad_number_is_a_422_naming_the_field(
    client: TestClient[Any, Any], actors: dict[str, Actor], body: dict[str, Any]
) -> None:
    response = await client.post(ERASE, json=body, headers=actors["admin"].headers)
    error = await expect_error(response, 422, "DB_003")
    assert error["field"] == "phone_number", error


async def test_a_number_with_a_call_in_progress_is_refused(
    client: TestClient[Any, Any], actors: dict[str, Actor], clock: FakeClock
) -> None:
    insert_call(client, clock(), status="answered", caller="+79001234567")
    response = await client.post(
        ERASE, json={"phone_number": NUMBER}, headers=actors["admin"].headers
    )
    error = await expect_error(response, 409, "DB_004")
    assert error["field"] == "phone_number"
    assert where_the_number_is(client)


async def test_recordings_that_cannot_be_deleted_stop_the_erasure_before_any_change(
    client: TestClient[Any, Any], actors: dict[str, Actor], stored: dict[str, str]
) -> None:
    """ARI is not connected in these tests: the recording cannot go, so nothing does."""
    before = where_the_number_is(client)
    response = await client.post(
        ERASE, json={"phone_number": NUMBER}, headers=actors["admin"].headers
    )
    await expect_error(response, 503, "AST_004")
    assert where_the_number_is(client) == before

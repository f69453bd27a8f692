"""SMS through the API: the gateway test against a real server on 127.0.0.1 (each outcome, its
authorization, no secret in any answer), the queues' SMS switches, the notices following
settings and queue changes, and the callback SMS queued in the outbox in the callback's own
transaction (confirmation, reminder, a move, a cancel, the throttle window)."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcenterd import keys
from callcenterd.domain.clock import from_iso
from callcenterd.domain.messages import CallFacts, MessageKind
from callcenterd.notify.sms import SmsGateway
from callcenterd.store.outbox import enqueue_in
from tests.api.conftest import Actor, ClientFactory, bearer, login
from tests.api.helpers import database_file, expect_error, query_db
from tests.conftest import FakeClock, free_port
from tests.sms_gateway import FakeGateway

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
TOKEN = "Bearer gw-secret-token-42"
CALLER = "8 (916) 123-45-67"
BOOKED = "89161234567"  # as a person types it into a booking
E164 = "+79161234567"


@pytest.fixture
async def gateway(aiohttp_server: ServerFactory) -> FakeGateway:
    fake = FakeGateway()
    fake.server = await aiohttp_server(fake.app())  # type: ignore[attr-defined]
    return fake


def sms_section(url: str, **values: Any) -> dict[str, Any]:
    return {
        "url": url,
        "auth_value": TOKEN,
        "sender": "ACME",
        "company": "ACME",
        "body": {"to": "{to}", "text": "{text}", "from": "{sender}"},
        **values,
    }


def url_of(gateway: FakeGateway) -> str:
    server: TestServer = gateway.server  # type: ignore[attr-defined]
    return f"http://127.0.0.1:{server.port}/v1/sms"


@pytest.fixture
async def sms_client(make_client: ClientFactory, gateway: FakeGateway) -> TestClient[Any, Any]:
    return await make_client(sms=sms_section(url_of(gateway)))


async def admin_of(client: TestClient[Any, Any]) -> dict[str, str]:
    return bearer(await login(client, "admin", "admin-pass"))


async def probe(
    client: TestClient[Any, Any], body: dict[str, Any], status: int = 200
) -> dict[str, Any]:
    response = await client.post(
        "/api/admin/settings/sms/test", json=body, headers=await admin_of(client)
    )
    text = await response.text()
    assert response.status == status, text
    assert "gw-secret-token-42" not in text
    found: dict[str, Any] = await response.json()
    return found


# --- the gateway test ----------------------------------------------------------------------------
async def test_the_test_sends_one_sms_at_once(
    sms_client: TestClient[Any, Any], gateway: FakeGateway
) -> None:
    result = await probe(sms_client, {"to": CALLER, "text": "Проверка связи"})
    assert result["success"] is True
    assert result["data"]["status_code"] == 200
    assert result["data"]["to"] == E164 and result["data"]["gateway"] == "127.0.0.1"
    assert "HTTP 200" in result["message"]
    [got] = gateway.received
    assert got.json == {"to": E164, "text": "Проверка связи", "from": "ACME"}
    assert got.headers["Authorization"] == TOKEN
    assert got.headers["Idempotency-Key"].startswith("sms:test:")
    # Not through the outbox
    assert query_db(sms_client, "SELECT COUNT(*) FROM outbox")[0][0] == 0


async def test_the_default_text_is_in_the_default_language(
    make_client: ClientFactory, gateway: FakeGateway
) -> None:
    client = await make_client(sms=sms_section(url_of(gateway), language="en"))
    await probe(client, {"to": "+442079460958"})
    assert gateway.received[0].json["text"] == "ACME: test message. SMS notifications are set up."


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [(500, "SMS_004", True), (429, "SMS_004", True), (400, "SMS_004", False),
     (401, "SMS_005", False), (403, "SMS_005", False)],
)  # fmt: skip
async def test_gateway_errors_are_reported(
    sms_client: TestClient[Any, Any],
    gateway: FakeGateway,
    status: int,
    code: str,
    retryable: bool,
) -> None:
    gateway.status, gateway.body = status, '{"error": "invalid sender"}'
    result = await probe(sms_client, {"to": E164})
    assert result["success"] is False
    data = result["data"]
    assert (data["code"], data["status_code"], data["retryable"]) == (code, status, retryable)
    assert f"HTTP {status}" in result["message"] and "invalid sender" in result["message"]
    assert data["details"]["possible_causes"] and data["troubleshooting"]


async def test_an_answer_that_is_not_a_success(
    make_client: ClientFactory, gateway: FakeGateway
) -> None:
    rules = {"success_json_field": "status", "success_json_value": "accepted"}
    client = await make_client(sms=sms_section(url_of(gateway), **rules))
    gateway.body = '{"status": "rejected", "reason": "no balance"}'
    result = await probe(client, {"to": E164})
    assert (result["success"], result["data"]["code"]) == (False, "SMS_006")
    assert "'rejected'" in result["message"] and "no balance" in result["message"]


async def test_a_refused_connection(make_client: ClientFactory) -> None:
    client = await make_client(sms=sms_section(f"http://127.0.0.1:{free_port()}/sms"))
    result = await probe(client, {"to": E164})
    assert (result["success"], result["data"]["code"]) == (False, "SMS_002")
    assert "connection refused" in result["message"]
    assert result["data"]["retryable"] is True


async def test_a_timeout(make_client: ClientFactory, gateway: FakeGateway) -> None:
    gateway.delay = 5
    client = await make_client(sms=sms_section(url_of(gateway), timeout=0.3))
    result = await probe(client, {"to": E164})
    assert (result["success"], result["data"]["code"]) == (False, "SMS_003")
    assert "within 0.3 s" in result["message"]


async def test_the_transport_for_the_outbox(
    make_client: ClientFactory, sms_client: TestClient[Any, Any]
) -> None:
    transport = sms_client.app[keys.SERVICES].sms.transport
    assert isinstance(transport, SmsGateway) and transport.kind is MessageKind.SMS
    assert (await make_client()).app[keys.SERVICES].sms.transport is None


async def test_not_configured(make_client: ClientFactory) -> None:
    result = await probe(await make_client(), {"to": E164})
    assert (result["success"], result["data"]["code"]) == (False, "SMS_001")
    assert result["message"].startswith("SMS gateway not configured")


@pytest.mark.parametrize("to", ["1001", "anonymous", "+7916", "alice"])
async def test_a_number_no_sms_can_go_to_is_a_422(
    sms_client: TestClient[Any, Any], gateway: FakeGateway, to: str
) -> None:
    response = await sms_client.post(
        "/api/admin/settings/sms/test", json={"to": to}, headers=await admin_of(sms_client)
    )
    body = await expect_error(response, 422, "DB_003")
    assert body["field"] == "to"
    assert gateway.received == []


@pytest.mark.parametrize(
    "body", [{}, {"to": E164, "extra": 1}, {"to": E164, "text": ""}, {"to": 79161234567}]
)
async def test_bad_bodies_are_422(sms_client: TestClient[Any, Any], body: dict[str, Any]) -> None:
    response = await sms_client.post(
        "/api/admin/settings/sms/test", json=body, headers=await admin_of(sms_client)
    )
    await expect_error(response, 422, "DB_003")


async def test_only_admins_may_test(sms_client: TestClient[Any, Any], gateway: FakeGateway) -> None:
    admin = await admin_of(sms_client)
    for role in ("manager", "supervisor", "operator"):
        body = {
            "username": f"{role}9",
            "email": f"{role}9@example.com",
            "name": role,
            "password": "secret-pw",
            "role": role,
        }
        if role == "operator":
            body["extension"] = "1009"
        response = await sms_client.post("/api/admin/users", json=body, headers=admin)
        assert response.status == 201, await response.text()
        token = await login(sms_client, f"{role}9", "secret-pw")
        response = await sms_client.post(
            "/api/admin/settings/sms/test", json={"to": E164}, headers=bearer(token)
        )
        await expect_error(response, 403, "AUTH_003")
    response = await sms_client.post("/api/admin/settings/sms/test", json={"to": E164})
    assert response.status == 401
    assert gateway.received == []


async def test_the_openapi_document_lists_the_test_and_the_queue_switches(
    sms_client: TestClient[Any, Any],
) -> None:
    client = sms_client
    document = await (await client.get("/openapi.json")).json()
    operation = document["paths"]["/api/admin/settings/sms/test"]["post"]
    assert {"200", "401", "403", "422"} <= set(operation["responses"])
    queue_out = document["components"]["schemas"]["QueueOut"]["properties"]
    assert {"sms_missed_call", "sms_callback_scheduled", "sms_callback_reminder",
            "notification_language"} <= set(queue_out)  # fmt: skip


# --- the queues' switches ----------------------------------------------------------------------
async def make_queue(client: TestClient[Any, Any], headers: dict[str, str], **fields: Any) -> Any:
    response = await client.post(
        "/api/queues/",
        json={"name": "Поддержка", "asterisk_name": "support", **fields},
        headers=headers,
    )
    assert response.status == 201, await response.text()
    return await response.json()


async def test_queue_switches_default_on_and_change(sms_client: TestClient[Any, Any]) -> None:
    client = sms_client
    admin = await admin_of(client)
    queue = await make_queue(client, admin)
    assert (queue["sms_missed_call"], queue["sms_callback_scheduled"]) == (True, True)
    assert (queue["sms_callback_reminder"], queue["notification_language"]) == (True, None)
    changes = {"sms_missed_call": False, "sms_callback_reminder": False,
               "notification_language": "en"}  # fmt: skip
    response = await client.put(f"/api/queues/{queue['id']}", json=changes, headers=admin)
    assert response.status == 200, await response.text()
    read = await (await client.get(f"/api/queues/{queue['id']}", headers=admin)).json()
    assert {name: read[name] for name in changes} == changes
    assert read["sms_callback_scheduled"] is True
    row = query_db(
        client,
        "SELECT sms_missed_call, sms_callback_reminder, notification_language FROM queues"
        " WHERE id = ?",
        (queue["id"],),
    )
    assert tuple(row[0]) == (0, 0, "en")


@pytest.mark.parametrize(
    "body",
    [{"notification_language": "de"}, {"sms_missed_call": None}, {"sms_missed_call": "yes"}],
)
async def test_bad_queue_switches_are_422(
    sms_client: TestClient[Any, Any], body: dict[str, Any]
) -> None:
    client = sms_client
    admin = await admin_of(client)
    queue = await make_queue(client, admin)
    response = await client.put(f"/api/queues/{queue['id']}", json=body, headers=admin)
    await expect_error(response, 422, "DB_003")


async def test_the_notices_follow_settings_and_queues(
    sms_client: TestClient[Any, Any], clock: FakeClock
) -> None:
    admin = await admin_of(sms_client)
    notices = sms_client.app[keys.SERVICES].sms.notices
    queue = await make_queue(sms_client, admin)
    facts = CallFacts("c1", CALLER, None, queue["id"], status="missed", reason="abandoned")

    def missed() -> list[str]:
        return [m.content["text"] for m in notices.messages_for("call_ended", {}, facts, clock())]

    assert missed() == []  # sms_notifications is off by default
    await sms_client.put("/api/admin/settings", json={"sms_notifications": True}, headers=admin)
    assert missed() == [
        "ACME, Поддержка: извините, мы пропустили ваш звонок. Пожалуйста, позвоните нам ещё раз."
    ]
    await sms_client.put("/api/admin/settings", json={"callback_enabled": True}, headers=admin)
    assert missed()[0].endswith("Мы перезвоним вам в ближайшее время.")
    await sms_client.put(
        f"/api/queues/{queue['id']}",
        json={"name": "Support", "notification_language": "en"},
        headers=admin,
    )
    assert missed() == ["ACME, Support: sorry we missed your call. We will call you back shortly."]
    await sms_client.put(
        f"/api/queues/{queue['id']}", json={"sms_missed_call": False}, headers=admin
    )
    assert missed() == []
    await sms_client.put(
        f"/api/queues/{queue['id']}", json={"sms_missed_call": True}, headers=admin
    )
    response = await sms_client.delete(f"/api/queues/{queue['id']}", headers=admin)
    assert response.status in (200, 204), await response.text()
    assert missed() == []


# --- callbacks: SMS queued in the callback's transaction -----------------------------------------
def outbox(client: TestClient[Any, Any]) -> list[dict[str, Any]]:
    rows = query_db(
        client,
        "SELECT kind, recipient, topic, idempotency_key, content, state, next_attempt_at,"
        " created_at FROM outbox ORDER BY id",
    )
    return [dict(row) for row in rows]


@pytest.fixture
async def booking(
    sms_client: TestClient[Any, Any], actors: dict[str, Actor]
) -> tuple[TestClient[Any, Any], str, dict[str, str]]:
    admin = actors["admin"].headers
    await sms_client.put("/api/admin/settings", json={"sms_notifications": True}, headers=admin)
    queue = await make_queue(sms_client, admin, members=["1001"])
    return sms_client, queue["id"], admin


async def book(
    client: TestClient[Any, Any], headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post("/api/callbacks/", json=body, headers=headers)
    assert response.status == 201, await response.text()
    booked: dict[str, Any] = await response.json()
    await client.app[keys.SERVICES].dispatcher.settled()
    return booked


@pytest.fixture
def client(sms_client: TestClient[Any, Any]) -> TestClient[Any, Any]:
    """The `actors` fixture logs users in on `client`: here that is the SMS-enabled app."""
    return sms_client


async def test_a_timed_callback_queues_its_confirmation_and_reminder(
    booking: tuple[TestClient[Any, Any], str, dict[str, str]], clock: FakeClock
) -> None:
    client, queue_id, admin = booking
    at = clock.now + timedelta(hours=3, microseconds=123_457)
    callback = await book(
        client, admin, {"queue_id": queue_id, "number": BOOKED, "scheduled_at": at.isoformat()}
    )
    confirmation, reminder = outbox(client)
    assert (confirmation["kind"], confirmation["recipient"]) == ("sms", E164)
    assert confirmation["topic"] == "callback_scheduled"
    assert confirmation["content"].startswith('{"text": "ACME, Поддержка: мы перезвоним вам ')
    assert from_iso(confirmation["next_attempt_at"]) == clock.now  # at once
    assert reminder["topic"] == "callback_reminder"
    assert from_iso(reminder["next_attempt_at"]) == at - timedelta(minutes=15)
    # Written with the callback: the same stamp as its row
    row = query_db(client, "SELECT created_at FROM callbacks WHERE id = ?", (callback["id"],))
    assert confirmation["created_at"] == row[0][0] == reminder["created_at"]


async def test_a_callback_without_a_time_is_confirmed_only(
    booking: tuple[TestClient[Any, Any], str, dict[str, str]],
) -> None:
    client, queue_id, admin = booking
    await book(client, admin, {"queue_id": queue_id, "number": BOOKED})
    [confirmation] = outbox(client)
    assert "как только освободится оператор" in confirmation["content"]


async def test_the_sms_fail_with_the_callback_and_the_callback_with_them(
    booking: tuple[TestClient[Any, Any], str, dict[str, str]],
) -> None:
    client, queue_id, admin = booking
    # The outbox refuses every row: the callback's transaction must not be half written.
    conn = sqlite3.connect(database_file(client))
    conn.execute(
        "CREATE TRIGGER refuse_sms BEFORE INSERT ON outbox"
        " BEGIN SELECT RAISE(ABORT, 'outbox refuses'); END"
    )
    conn.commit()
    conn.close()
    response = await client.post(
        "/api/callbacks/", json={"queue_id": queue_id, "number": BOOKED}, headers=admin
    )
    assert response.status != 201, await response.text()
    assert query_db(client, "SELECT COUNT(*) FROM callbacks")[0][0] == 0
    assert query_db(client, "SELECT COUNT(*) FROM outbox")[0][0] == 0


async def test_moving_a_callback_queues_the_new_time_and_withdraws_the_old_reminder(
    booking: tuple[TestClient[Any, Any], str, dict[str, str]], clock: FakeClock
) -> None:
    client, queue_id, admin = booking
    first = (clock.now + timedelta(hours=3)).replace(microsecond=0)
    callback = await book(
        client, admin, {"queue_id": queue_id, "number": BOOKED, "scheduled_at": first.isoformat()}
    )
    later = first + timedelta(hours=2)
    response = await client.put(
        f"/api/callbacks/{callback['id']}",
        json={"scheduled_at": later.isoformat()},
        headers=admin,
    )
    assert response.status == 200, await response.text()
    await client.app[keys.SERVICES].dispatcher.settled()
    rows = outbox(client)
    assert [(r["topic"], r["state"]) for r in rows] == [
        ("callback_scheduled", "queued"),
        ("callback_reminder", "cancelled"),  # the old time's
        ("callback_scheduled", "queued"),
        ("callback_reminder", "queued"),
    ]
    assert from_iso(rows[3]["next_attempt_at"]) == later - timedelta(minutes=15)
    # Cancelled: its reminder goes too
    response = await client.post(f"/api/callbacks/{callback['id']}/cancel", headers=admin)
    assert response.status == 200, await response.text()
    assert [r["state"] for r in outbox(client)] == ["queued", "cancelled", "queued", "cancelled"]


async def test_a_restart_queues_nothing_again(
    booking: tuple[TestClient[Any, Any], str, dict[str, str]], clock: FakeClock
) -> None:
    client, queue_id, admin = booking
    at = clock.now + timedelta(hours=3, microseconds=987_654)  # float seconds round this
    await book(
        client, admin, {"queue_id": queue_id, "number": BOOKED, "scheduled_at": at.isoformat()}
    )
    before = outbox(client)
    await client.app[keys.SERVICES].callbacks.adopt_open()  # what a start-up does
    await client.app[keys.SERVICES].dispatcher.settled()
    assert outbox(client) == before


async def test_one_confirmation_per_number_per_window(
    booking: tuple[TestClient[Any, Any], str, dict[str, str]], clock: FakeClock
) -> None:
    client, queue_id, admin = booking
    first = await book(client, admin, {"queue_id": queue_id, "number": BOOKED})
    await client.post(f"/api/callbacks/{first['id']}/cancel", headers=admin)
    clock.advance(minutes=30)
    await book(client, admin, {"queue_id": queue_id, "number": "+79161234567"})  # same number
    assert len(outbox(client)) == 1  # within the hour: throttled
    second = query_db(client, "SELECT id FROM callbacks WHERE status = 'pending'")[0][0]
    await client.post(f"/api/callbacks/{second}/cancel", headers=admin)
    clock.advance(minutes=31)
    await book(client, admin, {"queue_id": queue_id, "number": BOOKED})
    assert len(outbox(client)) == 2  # the window has passed


async def test_switched_off_or_internal_numbers_queue_nothing(
    booking: tuple[TestClient[Any, Any], str, dict[str, str]],
) -> None:
    client, queue_id, admin = booking
    await book(client, admin, {"queue_id": queue_id, "number": "1002"})  # an extension
    await client.put(
        f"/api/queues/{queue_id}",
        json={"sms_callback_scheduled": False, "sms_callback_reminder": False},
        headers=admin,
    )
    await book(client, admin, {"queue_id": queue_id, "number": BOOKED})
    assert outbox(client) == []
    await client.put(
        f"/api/queues/{queue_id}", json={"sms_callback_scheduled": True}, headers=admin
    )
    await client.put("/api/admin/settings", json={"sms_notifications": False}, headers=admin)
    await book(client, admin, {"queue_id": queue_id, "number": "+79031112233"})
    assert outbox(client) == []


async def test_one_missed_call_sms_per_number_per_window(
    booking: tuple[TestClient[Any, Any], str, dict[str, str]], clock: FakeClock
) -> None:
    """What the call recorder does with the source's messages: enqueue them in the record's
    transaction; the outbox drops a second one to the same number within the window."""
    client, queue_id, _ = booking
    services = client.app[keys.SERVICES]

    async def missed(call_id: str, caller: str) -> int:
        facts = CallFacts(call_id, caller, None, queue_id, status="missed", reason="abandoned")
        messages = services.sms.notices.messages_for("call_ended", {}, facts, clock())
        async with services.db.transaction() as conn:
            return await enqueue_in(conn, messages, clock())

    assert await missed("c1", CALLER) == 1
    clock.advance(minutes=59)
    assert await missed("c2", "+7 916 123 45 67") == 0  # the same number, written otherwise
    assert await missed("c3", "+79031112233") == 1  # another number
    clock.advance(minutes=2)
    assert await missed("c4", BOOKED) == 1  # the window has passed
    assert await missed("c4", BOOKED) == 0  # the same call again: idempotent
    rows = outbox(client)
    assert [(r["recipient"], r["idempotency_key"]) for r in rows] == [
        (E164, "sms:missed_call:c1"),
        ("+79031112233", "sms:missed_call:c3"),
        (E164, "sms:missed_call:c4"),
    ]

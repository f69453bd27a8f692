"""Webhooks end to end in-process: the real app, its outbox worker and a real receiver on
127.0.0.1 that checks every signature. Call facts go through the app's CallRecorder (the path
the dispatcher takes), so deliveries are enqueued in the facts' own transactions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd import keys
from callcenterd.contract.schemas import PASSWORD_MASK
from callcenterd.store.calls import CallEnd
from tests.api.conftest import Actor, ClientFactory, bearer, login
from tests.api.helpers import expect_error, query_db
from tests.api.routing_helpers import make_operator
from tests.conftest import FakeClock
from tests.eventually import eventually
from tests.webhook_receiver import WebhookReceiver

SECRET = "test-secret-0123456789"
FAST_OUTBOX = {
    "poll_seconds": 0.2,
    "base_delay": 0.05,
    "max_delay": 0.4,
    "max_attempts": 30,
    "concurrency": 8,
    "send_timeout": 0.5,
}
CALL_TYPES = ["call_started", "call_queued", "call_ringing", "call_answered", "call_ended"]


class RealClock(FakeClock):
    """The worker's backoff runs on real time here: retries must come due."""

    def __call__(self) -> datetime:
        return datetime.now(UTC)


@pytest.fixture
def clock() -> FakeClock:
    return RealClock()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    found = WebhookReceiver(secret=SECRET)
    await found.start()
    yield found
    await found.stop()


async def hooked_client(make_client: ClientFactory, **outbox: Any) -> TestClient[Any, Any]:
    return await make_client(
        webhooks={"allow_private_targets": True}, outbox={**FAST_OUTBOX, **outbox}
    )


async def admin_of(client: TestClient[Any, Any]) -> dict[str, str]:
    return bearer(await login(client, "admin", "admin-pass"))


async def create_hook(
    client: TestClient[Any, Any], headers: dict[str, str], url: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/admin/webhooks", json={"url": url, "secret": SECRET, **body}, headers=headers
    )
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def a_call(
    client: TestClient[Any, Any], operator_id: str, caller: str = "+79001112233"
) -> str:
    """started, queued, ringing, answered, ended, through the app's recorder."""
    records = client.app[keys.SERVICES].records
    call_id = str(uuid.uuid4())
    at = datetime.now(UTC) - timedelta(seconds=30)  # facts' times are in the past when written
    await records.started(
        call_id,
        at,
        channel_id=f"ch-{call_id[:8]}",
        caller_number=caller,
        called_number="100",
        routed_by="ari",
    )
    await records.queued(call_id, at + timedelta(seconds=1), None, 1)
    await records.ringing(call_id, at + timedelta(seconds=2), f"leg-{call_id[:8]}", operator_id)
    await records.answered(call_id, at + timedelta(seconds=3), operator_id, 3.0)
    end = CallEnd("completed", "caller_hangup", 20, operator_id=operator_id)
    await records.ended(call_id, at + timedelta(seconds=23), end)
    return call_id


@pytest.fixture
async def operator_id(client_and_admin: tuple[TestClient[Any, Any], Actor]) -> str:
    client, admin = client_and_admin
    return str((await make_operator(client, admin, "hooked-op", "1201"))["id"])


@pytest.fixture
async def client_and_admin(make_client: ClientFactory) -> tuple[TestClient[Any, Any], Actor]:
    client = await hooked_client(make_client)
    token = await login(client, "admin", "admin-pass")
    return client, Actor("admin", token, {})


def outbox_states(client: TestClient[Any, Any]) -> dict[str, int]:
    rows = query_db(client, "SELECT state, COUNT(*) FROM outbox GROUP BY state")
    return {row[0]: row[1] for row in rows}


# --- the API -------------------------------------------------------------------------------
async def test_a_host_that_does_not_resolve_is_refused(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    response = await client.post(
        "/api/admin/webhooks",
        json={"url": "https://hooks.example.com/in", "event_types": ["call_ended"]},
        headers=admin.headers,
    )
    # The host does not resolve here: refused, naming url (checked before anything is stored).
    body = await expect_error(response, 422, "DB_003")
    assert body["field"] == "url"


async def test_create_read_update_delete(
    make_client: ClientFactory, receiver: WebhookReceiver
) -> None:
    client = await hooked_client(make_client)
    headers = await admin_of(client)
    response = await client.post(
        "/api/admin/webhooks", json={"url": receiver.url, "event_types": "*"}, headers=headers
    )
    assert response.status == 201, await response.text()
    created = await response.json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30  # generated, shown this once
    stored = query_db(client, "SELECT secret FROM webhooks")[0][0]
    assert secret not in stored  # encrypted at rest
    hook_id = created["id"]
    shown = await (await client.get(f"/api/admin/webhooks/{hook_id}", headers=headers)).json()
    assert shown["secret"] == PASSWORD_MASK and shown["event_types"] == "*"
    listed = await (await client.get("/api/admin/webhooks", headers=headers)).json()
    assert [w["secret"] for w in listed] == [PASSWORD_MASK]
    response = await client.put(
        f"/api/admin/webhooks/{hook_id}",
        json={"event_types": ["call_ended", "call_ended"], "secret": PASSWORD_MASK},
        headers=headers,
    )
    assert response.status == 200, await response.text()
    updated = await response.json()
    assert updated["event_types"] == ["call_ended"] and updated["secret"] == PASSWORD_MASK
    assert query_db(client, "SELECT secret FROM webhooks")[0][0] == stored  # kept
    audit = query_db(client, "SELECT changes FROM audit_log WHERE entity = 'webhook'")
    assert audit and all(secret not in row[0] for row in audit)
    response = await client.delete(f"/api/admin/webhooks/{hook_id}", headers=headers)
    assert response.status == 200
    await expect_error(
        await client.get(f"/api/admin/webhooks/{hook_id}", headers=headers), 404, "DB_002"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
        "http://169.254.169.254/latest",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://0.0.0.0/hook",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
        "not a url",
    ],
)
async def test_urls_webhooks_may_not_use_are_refused_naming_url(
    client: TestClient[Any, Any], admin: Actor, url: str
) -> None:
    response = await client.post("/api/admin/webhooks", json={"url": url}, headers=admin.headers)
    body = await expect_error(response, 422, "DB_003")
    assert body["field"] == "url", body


async def test_a_private_network_may_be_allowed_in_the_config_file(
    make_client: ClientFactory,
) -> None:
    client = await make_client(webhooks={"allow_networks": ["127.0.0.0/8"]})
    headers = await admin_of(client)
    ok = await client.post(
        "/api/admin/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=headers
    )
    assert ok.status == 201, await ok.text()
    refused = await client.post(
        "/api/admin/webhooks", json={"url": "http://10.0.0.1/hook"}, headers=headers
    )
    assert (await expect_error(refused, 422, "DB_003"))["field"] == "url"


@pytest.mark.parametrize(
    "event_types",
    [["operator_status_changed"], ["queue_stats"], ["callback_scheduled"], ["bogus"], [], "all"],
)
async def test_event_types_webhooks_cannot_deliver_are_refused(
    make_client: ClientFactory, receiver: WebhookReceiver, event_types: Any
) -> None:
    client = await hooked_client(make_client)
    response = await client.post(
        "/api/admin/webhooks",
        json={"url": receiver.url, "event_types": event_types},
        headers=await admin_of(client),
    )
    assert (await expect_error(response, 422, "DB_003"))["field"] == "event_types"


# --- deliveries ------------------------------------------------------------------------------
async def test_a_calls_events_arrive_signed_in_order_as_on_the_websocket(
    client_and_admin: tuple[TestClient[Any, Any], Actor],
    operator_id: str,
    receiver: WebhookReceiver,
) -> None:
    client, admin = client_and_admin
    await create_hook(client, admin.headers, receiver.url)
    bus = client.app[keys.SERVICES].bus.subscribe()
    call_id = await a_call(client, operator_id)
    await eventually(lambda: len(receiver.accepted) == 5, within=5)
    assert [r.event_type for r in receiver.received] == CALL_TYPES  # in order, each once
    assert all(r.signed and r.content_type == "application/json" for r in receiver.received)
    websocket = [bus.queue.get_nowait() for _ in range(bus.queue.qsize())]
    mine = [e for e in websocket if e.data.get("call_id") == call_id]
    assert [r.body["type"] for r in receiver.received] == [e.type for e in mine]
    assert [r.body["data"] for r in receiver.received] == [e.data for e in mine]
    assert set(receiver.received[0].body) == {"type", "timestamp", "data"}
    assert receiver.received[-1].body["data"]["status"] == "completed"
    assert len({r.delivery_id for r in receiver.received}) == 5


async def test_only_the_chosen_event_types_are_delivered(
    client_and_admin: tuple[TestClient[Any, Any], Actor],
    operator_id: str,
    receiver: WebhookReceiver,
) -> None:
    client, admin = client_and_admin
    await create_hook(client, admin.headers, receiver.url, event_types=["call_ended"])
    await a_call(client, operator_id)
    await eventually(lambda: len(receiver.accepted) == 1, within=5)
    await asyncio.sleep(0.3)
    assert [r.event_type for r in receiver.received] == ["call_ended"]


async def test_no_webhook_no_outbox_rows(
    client_and_admin: tuple[TestClient[Any, Any], Actor], operator_id: str
) -> None:
    client, _ = client_and_admin
    await a_call(client, operator_id)
    assert query_db(client, "SELECT COUNT(*) FROM outbox")[0][0] == 0


async def test_the_same_fact_written_twice_is_delivered_once(
    client_and_admin: tuple[TestClient[Any, Any], Actor],
    operator_id: str,
    receiver: WebhookReceiver,
) -> None:
    client, admin = client_and_admin
    await create_hook(client, admin.headers, receiver.url, event_types=["call_queued"])
    records = client.app[keys.SERVICES].records
    call_id, at = str(uuid.uuid4()), datetime.now(UTC)
    await records.started(
        call_id, at, channel_id="ch-x", caller_number="+7900", called_number=None, routed_by="ari"
    )
    for _ in range(2):  # a retried write, a restart replaying the fact
        await records.queued(call_id, at, None, 1)
    await eventually(lambda: len(receiver.accepted) == 1, within=5)
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 1
    assert query_db(client, "SELECT COUNT(*) FROM outbox")[0][0] == 1


async def test_outage_500_timeouts_refused_then_recovery_delivers_every_message(
    make_client: ClientFactory, receiver: WebhookReceiver
) -> None:
    client = await hooked_client(make_client)
    headers = await admin_of(client)
    operator = str((await make_operator(client, _admin(headers), "hooked-op", "1301"))["id"])
    await create_hook(client, headers, receiver.url)
    calls = 6
    receiver.mode = "fail"  # 500
    for n in range(calls // 3):
        await a_call(client, operator, caller=f"+7900000000{n}")
    await eventually(lambda: len(receiver.received) >= 10, within=5)
    receiver.mode, receiver.hang_seconds = "hang", 2.0  # longer than send_timeout (0.5 s)
    for n in range(calls // 3, 2 * calls // 3):
        await a_call(client, operator, caller=f"+7900000000{n}")
    await eventually(lambda: len(receiver.received) >= 25, within=5)
    await receiver.stop()  # refused
    for n in range(2 * calls // 3, calls):
        await a_call(client, operator, caller=f"+7900000000{n}")
    await asyncio.sleep(1.0)
    assert outbox_states(client) == {"queued": calls * 5}  # none lost, none given up
    tries = query_db(client, "SELECT MAX(attempts) FROM outbox")[0][0]
    assert tries >= 3
    errors = {row[0].split(":")[0] for row in query_db(client, "SELECT last_error FROM outbox")}
    assert errors & {"ClientConnectorError", "ClientConnectorDNSError", "ClientOSError"}, errors
    receiver.mode = "ok"
    await receiver.start()

    async def all_sent() -> None:
        assert outbox_states(client) == {"sent": calls * 5}

    await eventually(all_sent, within=10)
    expected = {row[0] for row in query_db(client, "SELECT idempotency_key FROM outbox")}
    assert set(receiver.accepted_ids()) == expected  # every message, once recovered
    # Duplicates (at least once): only deliveries the hanging receiver took in, kept past the
    # sender's timeout and then processed (it was "ok" again by then) while the retry came too.
    late = {r.delivery_id for r in receiver.received if r.mode == "hang"}
    twice = {key for key, count in receiver.accepted_ids().items() if count > 1}
    assert twice <= late
    print(f"deliveries {calls * 5}, duplicates {receiver.duplicates()} (all late-processed)")


def _admin(headers: dict[str, str]) -> Actor:
    return Actor("admin", headers["Authorization"].removeprefix("Bearer "), {})


async def test_a_final_failed_after_max_tries_then_retry_through_the_api(
    make_client: ClientFactory, receiver: WebhookReceiver
) -> None:
    client = await hooked_client(make_client, max_attempts=3)
    headers = await admin_of(client)
    operator = str((await make_operator(client, _admin(headers), "hooked-op", "1302"))["id"])
    hook = await create_hook(client, headers, receiver.url, event_types=["call_ended"])
    receiver.mode = "fail"
    await a_call(client, operator)

    async def failed() -> None:
        assert outbox_states(client) == {"failed": 1}

    await eventually(failed, within=5)
    assert len(receiver.received) == 3
    page = await (await client.get("/api/admin/outbox?state=failed", headers=headers)).json()
    (message,) = page["items"]
    assert (message["attempts"], message["last_status_code"]) == (3, 500)
    assert message["last_error"].startswith("HTTP 500")
    deliveries = await (
        await client.get(f"/api/admin/webhooks/{hook['id']}/deliveries", headers=headers)
    ).json()
    assert [(d["state"], d["attempts"], d["last_status_code"]) for d in deliveries] == [
        ("failed", 3, 500)
    ]
    receiver.mode = "ok"
    response = await client.post(f"/api/admin/outbox/{message['id']}/retry", headers=headers)
    assert response.status == 200, await response.text()
    assert (await response.json())["state"] == "queued"
    await eventually(lambda: len(receiver.accepted) == 1, within=5)
    await eventually(lambda: outbox_states(client) == {"sent": 1}, within=5)
    # A sent message cannot be retried or cancelled: 409 in the error shape.
    for action in ("retry", "cancel"):
        response = await client.post(f"/api/admin/outbox/{message['id']}/{action}", headers=headers)
        await expect_error(response, 409, "OUTBOX_001")
    # Redeliver: the same delivery id again.
    delivery_id = deliveries[0]["delivery_id"]
    response = await client.post(
        f"/api/admin/webhooks/{hook['id']}/deliveries/{delivery_id}/redeliver", headers=headers
    )
    assert response.status == 200, await response.text()
    await eventually(lambda: len(receiver.accepted) == 2, within=5)
    assert receiver.accepted_ids() == {delivery_id: 2}
    missing = f"/api/admin/webhooks/{hook['id']}/deliveries/{uuid.uuid4()}/redeliver"
    await expect_error(await client.post(missing, headers=headers), 404, "DB_002")


async def test_a_receiver_refusing_for_good_fails_at_once_429_is_retried(
    make_client: ClientFactory, receiver: WebhookReceiver
) -> None:
    client = await hooked_client(make_client)
    headers = await admin_of(client)
    operator = str((await make_operator(client, _admin(headers), "hooked-op", "1303"))["id"])
    await create_hook(client, headers, receiver.url, event_types=["call_ended"])
    receiver.mode = "gone"  # 410
    await a_call(client, operator)
    await eventually(lambda: outbox_states(client) == {"failed": 1}, within=5)
    assert len(receiver.received) == 1


async def test_cancel_through_the_api_and_switching_a_webhook_off(
    make_client: ClientFactory, receiver: WebhookReceiver
) -> None:
    client = await hooked_client(make_client, base_delay=5.0, max_delay=5.0)
    headers = await admin_of(client)
    operator = str((await make_operator(client, _admin(headers), "hooked-op", "1304"))["id"])
    hook = await create_hook(client, headers, receiver.url)
    receiver.mode = "fail"
    await a_call(client, operator)
    await eventually(lambda: len(receiver.received) >= 5, within=5)  # each tried once
    page = await (
        await client.get("/api/admin/outbox?kind=webhook&limit=2", headers=headers)
    ).json()
    assert (page["total"], page["page"], page["pages"], len(page["items"])) == (5, 1, 3, 2)
    first = page["items"][0]
    one = await (await client.get(f"/api/admin/outbox/{first['id']}", headers=headers)).json()
    assert one["content"]["event"]["type"] == "call_ended" and one["recipient"] == hook["id"]
    response = await client.post(f"/api/admin/outbox/{first['id']}/cancel", headers=headers)
    assert (await response.json())["state"] == "cancelled"
    await expect_error(await client.get("/api/admin/outbox/999999", headers=headers), 404, "DB_002")
    response = await client.put(
        f"/api/admin/webhooks/{hook['id']}", json={"active": False}, headers=headers
    )
    assert response.status == 200
    assert outbox_states(client) == {"cancelled": 5}
    filtered = await (
        await client.get("/api/admin/outbox?state=queued&kind=webhook", headers=headers)
    ).json()
    assert filtered["total"] == 0
    # Nothing more reaches the receiver.
    tried = len(receiver.received)
    await asyncio.sleep(0.5)
    assert len(receiver.received) == tried


async def test_outbox_metrics(make_client: ClientFactory, receiver: WebhookReceiver) -> None:
    client = await hooked_client(make_client)
    headers = await admin_of(client)
    operator = str((await make_operator(client, _admin(headers), "hooked-op", "1305"))["id"])
    await create_hook(client, headers, receiver.url)
    await a_call(client, operator)
    await eventually(lambda: outbox_states(client) == {"sent": 5}, within=5)
    text = await (await client.get("/metrics")).text()
    assert 'callcenterd_outbox_messages{kind="webhook",state="sent"} 5.0' in text
    assert 'callcenterd_outbox_sent_total{kind="webhook"} 5.0' in text
    assert "callcenterd_outbox_oldest_queued_age_seconds 0.0" in text

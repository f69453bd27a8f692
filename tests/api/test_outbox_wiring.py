"""The app's wiring of the outbox: one missed call, through the app's own recorder, reaches a
webhook receiver and an SMS gateway (both real servers on 127.0.0.1) through the one worker;
and the sources that are off cost the call path nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callcenterd import keys
from callcenterd.store.calls import CallEnd
from tests.api.conftest import ClientFactory, bearer, login
from tests.api.helpers import query_db
from tests.api.test_sms import sms_section
from tests.api.test_webhooks import FAST_OUTBOX, SECRET, RealClock
from tests.conftest import FakeClock
from tests.eventually import eventually
from tests.sms_gateway import FakeGateway
from tests.webhook_receiver import WebhookReceiver

CALLER = "89161234567"


@pytest.fixture
def clock() -> FakeClock:
    return RealClock()


@pytest.fixture
async def gateway(aiohttp_server: Any) -> FakeGateway:
    fake = FakeGateway()
    fake.server = await aiohttp_server(fake.app())  # type: ignore[attr-defined]
    return fake


async def missed_call(client: TestClient[Any, Any], queue_id: str, caller: str = CALLER) -> str:
    records = client.app[keys.SERVICES].records
    call_id, at = str(uuid.uuid4()), datetime.now(UTC) - timedelta(seconds=30)
    await records.started(
        call_id, at, channel_id="ch-m", caller_number=caller, called_number="100", routed_by="ari"
    )
    await records.queued(call_id, at + timedelta(seconds=1), queue_id, 1)
    end = CallEnd("missed", "abandoned", 0, wait_seconds=20.0, queue_id=queue_id)
    await records.ended(call_id, at + timedelta(seconds=21), end)
    return call_id


async def test_a_missed_call_reaches_the_webhook_and_the_caller_by_sms(
    make_client: ClientFactory, gateway: FakeGateway
) -> None:
    port = gateway.server.port  # type: ignore[attr-defined]
    client = await make_client(
        sms=sms_section(f"http://127.0.0.1:{port}/v1/sms"),
        webhooks={"allow_private_targets": True},
        outbox=FAST_OUTBOX,
    )
    receiver = WebhookReceiver(secret=SECRET)
    await receiver.start()
    try:
        headers = bearer(await login(client, "admin", "admin-pass"))
        await client.put("/api/admin/settings", json={"sms_notifications": True}, headers=headers)
        response = await client.post(
            "/api/queues/", json={"name": "Support", "asterisk_name": "support"}, headers=headers
        )
        queue = await response.json()
        response = await client.post(
            "/api/admin/webhooks",
            json={"url": receiver.url, "secret": SECRET, "event_types": ["call_ended"]},
            headers=headers,
        )
        assert response.status == 201, await response.text()
        call_id = await missed_call(client, queue["id"])
        await eventually(lambda: len(receiver.accepted) == 1 and len(gateway.received) == 1)
        (delivery,) = receiver.accepted
        assert delivery.body["data"]["call_id"] == call_id and delivery.signed
        assert gateway.received[0].json["to"] == "+79161234567"

        def both_sent() -> None:
            states = query_db(client, "SELECT kind, state FROM outbox ORDER BY kind")
            assert [tuple(row) for row in states] == [("sms", "sent"), ("webhook", "sent")]

        await eventually(both_sent)
    finally:
        await receiver.stop()


async def test_sources_that_are_off_are_not_asked(make_client: ClientFactory) -> None:
    client = await make_client()
    records = client.app[keys.SERVICES].records
    # No webhook, SMS and email off: the recorder has sources, and asks none of them.
    assert not records._sourcing()
    response = await client.post(
        "/api/queues/",
        json={"name": "Support", "asterisk_name": "support"},
        headers=bearer(await login(client, "admin", "admin-pass")),
    )
    await missed_call(client, (await response.json())["id"])
    assert query_db(client, "SELECT COUNT(*) FROM outbox")[0][0] == 0


async def test_sms_survive_a_gateway_outage_failing_hanging_then_refusing(
    make_client: ClientFactory, aiohttp_server: Any
) -> None:
    """500s, then answers later than the timeout, then a closed port; then the gateway is back:
    every missed-call SMS is sent, none is lost, and only a request the gateway took but
    answered too late can arrive twice (at least once, with the same Idempotency-Key)."""
    gateway = FakeGateway(status=500, body='{"error": "down"}')
    server = await aiohttp_server(gateway.app())
    port = server.port
    client = await make_client(
        sms=sms_section(f"http://127.0.0.1:{port}/v1/sms", timeout=0.3, window_seconds=0),
        outbox={**FAST_OUTBOX, "max_attempts": 100},
    )
    headers = bearer(await login(client, "admin", "admin-pass"))
    await client.put("/api/admin/settings", json={"sms_notifications": True}, headers=headers)
    response = await client.post(
        "/api/queues/", json={"name": "Support", "asterisk_name": "support"}, headers=headers
    )
    queue_id = (await response.json())["id"]
    numbers = [f"+7916000000{i}" for i in range(5)]
    for number in numbers:
        await missed_call(client, queue_id, caller=number)

    def tried(at_least: int) -> None:
        assert len(gateway.received) >= at_least

    await eventually(lambda: tried(10))  # every message tried, some twice: 500s
    gateway.status, gateway.body, gateway.delay = 200, '{"status": "ok"}', 1.0
    seen = len(gateway.received)
    await eventually(lambda: tried(seen + 5))  # taken, answered after the 0.3 s timeout
    await server.close()  # refused connections

    def refused() -> None:
        rows = query_db(client, "SELECT last_error FROM outbox WHERE state = 'queued'")
        assert any("onnect" in (row["last_error"] or "") for row in rows), rows

    await eventually(refused)
    assert query_db(client, "SELECT COUNT(*) FROM outbox WHERE state = 'sent'")[0][0] == 0
    gateway.delay = 0.0
    back = TestServer(gateway.app(), port=port)
    await back.start_server()
    try:

        def all_sent() -> None:
            states = query_db(client, "SELECT state, COUNT(*) FROM outbox GROUP BY state")
            assert [tuple(row) for row in states] == [("sent", 5)]

        await eventually(all_sent, within=15)
    finally:
        await back.close()
    delivered = [r for r in gateway.received if r.json["to"] in numbers]
    assert {r.json["to"] for r in delivered} == set(numbers)  # none lost
    keys_by_number = {(r.json["to"], r.headers["Idempotency-Key"]) for r in delivered}
    assert len(keys_by_number) == len(numbers)  # one key per number across every resend

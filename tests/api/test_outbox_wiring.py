"""The app's wiring of the outbox: one missed call, through the app's own recorder, reaches a
webhook receiver and an SMS gateway (both real servers on 127.0.0.1) through the one worker;
and the sources that are off cost the call path nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

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


async def missed_call(client: TestClient[Any, Any], queue_id: str) -> str:
    records = client.app[keys.SERVICES].records
    call_id, at = str(uuid.uuid4()), datetime.now(UTC) - timedelta(seconds=30)
    await records.started(
        call_id, at, channel_id="ch-m", caller_number=CALLER, called_number="100", routed_by="ari"
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

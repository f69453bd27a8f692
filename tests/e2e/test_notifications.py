"""Notifications on the real Asterisk: a sipp caller gives up waiting, and what leaves the
daemon arrives at real servers on 127.0.0.1 through the outbox: the SMS gateway gets the
missed-call text for that number, the queue's supervisor's mailbox the alert, and a webhook
every call event of that call, signed, in the order the WebSocket stream had them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.e2e.daemon import Daemon, start_daemon
from tests.eventually import eventually
from tests.sandbox import AsteriskSandbox, Callers, OperatorPhones, PhoneBehaviour
from tests.sms_gateway import FakeGateway
from tests.smtp_server import SmtpServer, smtp_server
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
CALLER = "89161234567"  # as the trunk presents it: a national number
E164 = "+79161234567"
HOOK_SECRET = "e2e-webhook-secret-0123456789"


@pytest.fixture
async def gateway(aiohttp_server: ServerFactory) -> FakeGateway:
    fake = FakeGateway()
    fake.server = await aiohttp_server(fake.app())  # type: ignore[attr-defined]
    return fake


@pytest.fixture
def mail() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver(secret=HOOK_SECRET)
    await hook.start()
    yield hook
    await hook.stop()


@pytest.fixture
async def notifying_daemon(
    aiohttp_client: Any,
    tmp_path: Path,
    asterisk: AsteriskSandbox,
    gateway: FakeGateway,
    mail: SmtpServer,
) -> AsyncIterator[Daemon]:
    port = gateway.server.port  # type: ignore[attr-defined]
    running = await start_daemon(
        aiohttp_client,
        tmp_path / "state",
        asterisk,
        "ari",
        sms={"url": f"http://127.0.0.1:{port}/v1/sms", "sender": "ACME", "company": "ACME"},
        webhooks={"allow_private_targets": True},  # the receiver is on 127.0.0.1
        outbox={"poll_seconds": 0.5, "base_delay": 0.2},
    )
    await running.api(
        "PUT",
        "/api/admin/settings",
        {
            "sms_notifications": True,
            "email_notifications": True,
            "email_config": {
                "host": mail.host,
                "port": mail.port,
                "security": "none",
                "from_address": "callcenter@example.com",
                "supervisor_alerts": "immediate",
                "daily_report": False,
            },
        },
    )
    yield running
    running.events.close()


async def test_an_abandoned_caller_gets_an_sms_the_supervisor_a_mail_a_webhook_each_event(
    notifying_daemon: Daemon,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
    gateway: FakeGateway,
    mail: SmtpServer,
    receiver: WebhookReceiver,
) -> None:
    daemon = notifying_daemon
    group = await daemon.api("POST", "/api/admin/groups", {"name": "Billing team"}, status=201)
    await daemon.api(
        "POST",
        "/api/admin/users",
        {
            "username": "sup1",
            "email": "sup1@example.com",
            "name": "Supervisor",
            "password": "secret-pw",
            "role": "supervisor",
            "group_id": group["id"],
        },
        status=201,
    )
    phones = await operator_phones.start({"1004": PhoneBehaviour.ring_until_cancelled()})
    await daemon.operator("1004", group_id=group["id"])
    await daemon.queue("billing", ["1004"])
    hook = await daemon.api(
        "POST",
        "/api/admin/webhooks",
        {"url": receiver.url, "event_types": "*", "secret": HOOK_SECRET},
        status=201,
    )

    call = await caller.dial(
        asterisk.queue_number("billing"), caller_number=CALLER, hang_up_after_ms=2000
    )
    started = await daemon.wait_for_event("call_started")
    call_id = started["call_id"]
    stream = ["call_started"]
    while stream[-1] != "call_ended":
        event = await daemon.events.next(20)
        if event.data.get("call_id") == call_id:
            stream.append(event.type)
    outcome = await call.outcome(within=20)
    assert outcome.exit_code == 0  # answered by the daemon (music on hold), never by 1004
    record = await daemon.call_record(call_id, "missed")
    assert record["reason"] == "abandoned"
    await phones["1004"].wait_for_calls(1)

    # The SMS gateway: the missed-call text, to the number in E.164, once.
    def one_sms() -> Any:
        assert len(gateway.received) == 1, gateway.received
        return gateway.received[0].json

    sms = await eventually(one_sms, 15)
    assert sms["to"] == E164 and sms["sender"] == "ACME"
    assert "пропустили ваш звонок" in sms["text"] and sms["text"].startswith("ACME, Billing")
    # The supervisor of the queue's group: the alert naming the number and the queue.
    [alert] = await eventually(lambda: _one(mail.mailbox.to("sup1@example.com")), 15)
    assert CALLER in alert.subject and "Billing" in alert.subject  # as the call list shows it
    assert call_id in alert.text

    # The webhook: every event of the call, signed, in the stream's order, each once.
    def all_delivered() -> list[str]:
        mine = [r for r in receiver.accepted if r.body["data"].get("call_id") == call_id]
        assert [r.event_type for r in mine] == stream, (mine, stream)
        return [r.delivery_id for r in mine]

    deliveries = await eventually(all_delivered, 15)
    assert len(set(deliveries)) == len(stream) >= 4  # started, queued, ringing, ended
    assert all(r.signed for r in receiver.received)
    ended = receiver.accepted[-1].body
    assert ended["type"] == "call_ended" and ended["data"]["status"] == "missed"

    # The outbox holds each message as sent.
    async def all_sent() -> None:  # marked once the far end's answer is back
        page = await daemon.api("GET", "/api/admin/outbox?limit=100")
        states = {(item["kind"], item["state"]) for item in page["items"]}
        assert states == {("sms", "sent"), ("email", "sent"), ("webhook", "sent")}, page

    await eventually(all_sent, 10)
    shown = await daemon.api("GET", f"/api/admin/webhooks/{hook['id']}/deliveries")
    assert len(shown["items"] if isinstance(shown, dict) else shown) == len(stream)


def _one(found: list[Any]) -> list[Any]:
    assert len(found) == 1, found
    return found

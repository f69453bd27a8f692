"""notify/webhooks.py: the source (pure), the target policy, the signature, and the transport's
checks at send time (a real aiohttp client against a real server on 127.0.0.1)."""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import ip_address, ip_network
from typing import Any

import pytest
from aiohttp import web

from callcenterd.domain.messages import CallFacts, DeliveryFailed, MessageKind, QueuedMessage
from callcenterd.notify.webhooks import (
    GuardedResolver,
    TargetPolicy,
    TargetRefused,
    WebhookSource,
    WebhookTarget,
    WebhookTransport,
    delivery_id,
    rule_of,
    signature,
    verify,
)
from tests.conftest import free_port
from tests.webhook_receiver import WebhookReceiver

AT = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
FACTS = CallFacts("call-1", "+79001234567", "100", "q1")


def event(type_: str = "call_ended", **data: Any) -> dict[str, Any]:
    return {"type": type_, "timestamp": "2026-12-07T10:00:00.000000Z", "data": data}


def test_one_delivery_per_matching_active_webhook() -> None:
    source = WebhookSource(
        [
            rule_of("all", "*", True),
            rule_of("ended", ["call_ended"], True),
            rule_of("started", ["call_started"], True),
            rule_of("off", "*", False),
        ]
    )
    found = source.messages_for("call_ended", event(call_id="c"), FACTS, AT)
    assert sorted(m.recipient for m in found) == ["all", "ended"]
    assert {m.kind for m in found} == {MessageKind.WEBHOOK}
    assert all(m.content == {"event": event(call_id="c")} for m in found)
    assert all(m.idempotency_key == delivery_id(m.recipient, event(call_id="c")) for m in found)
    source.remove("all")
    assert [m.recipient for m in source.messages_for("call_ended", event(), FACTS, AT)] == ["ended"]
    source.replace([])
    assert not source  # empty: the recorder skips it (no work on the call path)


def test_delivery_ids_are_the_same_for_the_same_fact_and_differ_otherwise() -> None:
    assert delivery_id("w", event(call_id="a")) == delivery_id("w", event(call_id="a"))
    assert delivery_id("w", event(call_id="a")) != delivery_id("w", event(call_id="b"))
    assert delivery_id("w", event(call_id="a")) != delivery_id("v", event(call_id="a"))


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"type":"call_ended"}'
    header = signature("s3cret", 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert verify("s3cret", header, body)
    assert not verify("other", header, body)
    assert not verify("s3cret", header, body + b" ")
    assert not verify("s3cret", "garbage", body)


@pytest.mark.parametrize(
    ("address", "what"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
    ],
)
def test_non_public_addresses_are_refused_by_default(address: str, what: str) -> None:
    with pytest.raises(TargetRefused, match=what):
        TargetPolicy().check_address(ip_address(address))


def test_public_addresses_pass_and_the_config_file_can_allow_more() -> None:
    TargetPolicy().check_address(ip_address("93.184.216.34"))
    TargetPolicy(allow_private=True).check_address(ip_address("127.0.0.1"))
    allowing = TargetPolicy(allow_networks=(ip_network("10.1.0.0/16"),))
    allowing.check_address(ip_address("10.1.2.3"))
    with pytest.raises(TargetRefused):
        allowing.check_address(ip_address("10.2.0.1"))


async def test_every_address_a_name_resolves_to_is_checked() -> None:
    with pytest.raises(TargetRefused, match="loopback"):
        await TargetPolicy().check_url("http://localhost:9/x")
    with pytest.raises(TargetRefused, match="cannot be resolved"):
        await TargetPolicy().check_url("http://no-such-host.invalid/x")

    async def rebinding(host: str) -> list[Any]:
        return [ip_address("93.184.216.34"), ip_address("10.0.0.7")]

    with pytest.raises(TargetRefused, match="private"):
        await TargetPolicy().check_url("http://two-faced.example/x", rebinding)


async def test_the_connection_itself_goes_only_to_checked_addresses() -> None:
    with pytest.raises(OSError, match="loopback"):
        await GuardedResolver(TargetPolicy()).resolve("localhost", 80)


def queued(recipient: str = "w1") -> QueuedMessage:
    return QueuedMessage(
        1, MessageKind.WEBHOOK, recipient, "d-1", {"event": event(call_id="c")}, "call_ended", 0, AT
    )


async def test_the_transport_checks_the_target_again_at_send_time() -> None:
    receiver = WebhookReceiver(secret="s" * 16)
    await receiver.start()
    target = WebhookTarget(receiver.url, "s" * 16, True)
    try:
        refusing = WebhookTransport(lambda _: target, TargetPolicy())
        with pytest.raises(DeliveryFailed) as failed:
            await refusing.send(queued())
        assert not failed.value.retryable and "loopback" in failed.value.detail
        assert receiver.received == []  # nothing left the daemon
        allowing = WebhookTransport(lambda _: target, TargetPolicy(allow_private=True))
        receipt = await allowing.send(queued())
        assert receipt.status_code == 204
        (got,) = receiver.accepted
        assert got.signed and got.delivery_id == "d-1" and got.event_type == "call_ended"
        assert got.body == event(call_id="c")
        await allowing.close()
        await refusing.close()
    finally:
        await receiver.stop()


async def test_a_deleted_or_switched_off_webhook_fails_at_once() -> None:
    transport = WebhookTransport(lambda _: None, TargetPolicy(allow_private=True))
    with pytest.raises(DeliveryFailed) as failed:
        await transport.send(queued())
    assert not failed.value.retryable
    off = WebhookTransport(
        lambda _: WebhookTarget("http://127.0.0.1:9/", "s", False), TargetPolicy(allow_private=True)
    )
    with pytest.raises(DeliveryFailed) as failed:
        await off.send(queued())
    assert not failed.value.retryable


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (503, True), (408, True), (429, True), (400, False), (404, False), (301, False)],
)
async def test_answers_that_are_retried_and_those_that_fail_at_once(
    status: int, retryable: bool
) -> None:
    app = web.Application()

    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, text="no")

    app.router.add_post("/hook", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    transport = WebhookTransport(
        lambda _: WebhookTarget(f"http://127.0.0.1:{port}/hook", "s", True),
        TargetPolicy(allow_private=True),
    )
    try:
        with pytest.raises(DeliveryFailed) as failed:
            await transport.send(queued())
        assert (failed.value.retryable, failed.value.status_code) == (retryable, status)
    finally:
        await transport.close()
        await runner.cleanup()


async def test_a_refused_connection_is_retried() -> None:
    transport = WebhookTransport(
        lambda _: WebhookTarget(f"http://127.0.0.1:{free_port()}/hook", "s", True),
        TargetPolicy(allow_private=True),
    )
    try:
        with pytest.raises(DeliveryFailed) as failed:
            await transport.send(queued())
        assert failed.value.retryable and failed.value.status_code is None
    finally:
        await transport.close()

"""The HTTP SMS gateway transport against a real server on 127.0.0.1: each encoding received
exactly as configured, the auth and idempotency headers, the success rules, and every failure
mapped to DeliveryFailed (retryable or not) without the secret in its detail."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from callcenterd.domain.messages import DeliveryFailed, MessageKind, QueuedMessage
from callcenterd.notify.sms import SmsGateway, build_request, fill
from callcenterd.settings import SmsSettings
from tests.conftest import free_port
from tests.sms_gateway import FakeGateway

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
TOKEN = "Bearer s3cr3t-token-value"
TEXT = 'Поддержка: мы перезвоним вам сегодня в 15:30. "Quotes" & {braces} \\ done'


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def gateway(aiohttp_server: ServerFactory) -> FakeGateway:
    fake = FakeGateway()
    fake.server = await aiohttp_server(fake.app())  # type: ignore[attr-defined]
    return fake


def url_of(gateway: FakeGateway, path: str = "/v1/messages") -> str:
    server: TestServer = gateway.server  # type: ignore[attr-defined]
    return f"http://127.0.0.1:{server.port}{path}"


def message(text: str = TEXT, to: str = "+79161234567", key: str = "sms:test:1") -> QueuedMessage:
    return QueuedMessage(
        id=1,
        kind=MessageKind.SMS,
        recipient=to,
        idempotency_key=key,
        content={"text": text},
        topic="test",
        attempts=0,
        created_at=datetime(2026, 12, 7, 12, 0, tzinfo=UTC),
    )


def sms_settings(url: str, **values: Any) -> SmsSettings:
    return SmsSettings.model_validate({"url": url, **values})


async def failure(transport: SmsGateway, **kwargs: Any) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as caught:
        await transport.send(message(**kwargs))
    return caught.value


# --- what the gateway receives -----------------------------------------------------------------
async def test_json_with_a_bearer_token(
    session: aiohttp.ClientSession, gateway: FakeGateway
) -> None:
    settings = sms_settings(
        url_of(gateway),
        auth_header="Authorization",
        auth_value=TOKEN,
        sender="ACME",
        body={
            "messages": [{"to": "{to}", "text": "{text}", "from": "{sender}"}],
            "reference": "{id}",
            "options": {"priority": 1, "flash": False},
        },
    )
    receipt = await SmsGateway(session, settings).send(message())
    [got] = gateway.received
    assert (got.method, got.path, got.content_type) == ("POST", "/v1/messages", "application/json")
    assert got.headers["Authorization"] == TOKEN
    assert got.headers["Idempotency-Key"] == "sms:test:1"
    assert got.json == {
        "messages": [{"to": "+79161234567", "text": TEXT, "from": "ACME"}],
        "reference": "sms:test:1",
        "options": {"priority": 1, "flash": False},
    }
    assert "Поддержка".encode() in got.raw  # UTF-8 as it is, the escaping JSON's own
    assert got.headers["Content-Type"] == "application/json; charset=utf-8"
    assert receipt.status_code == 200
    assert receipt.answer.startswith("HTTP 200 OK")


async def test_form_with_basic_auth(session: aiohttp.ClientSession, gateway: FakeGateway) -> None:
    settings = sms_settings(
        url_of(gateway, "/accounts/AC1/Messages.json"),
        encoding="form",
        auth_value="Basic dXNlcjpwYXNzd29yZA==",
        sender="+15550001111",
        body={"To": "{to}", "From": "{sender}", "Body": "{text}", "Digits": "{to_digits}"},
        success_status=[201],
    )
    gateway.status = 201
    await SmsGateway(session, settings).send(message())
    [got] = gateway.received
    assert got.content_type == "application/x-www-form-urlencoded"
    assert got.headers["Authorization"] == "Basic dXNlcjpwYXNzd29yZA=="
    assert got.form == {
        "To": "+79161234567",
        "From": "+15550001111",
        "Body": TEXT,
        "Digits": "79161234567",
    }


async def test_get_sends_the_fields_as_a_query_string(
    session: aiohttp.ClientSession, gateway: FakeGateway
) -> None:
    settings = sms_settings(
        url_of(gateway, "/send"),
        method="GET",
        encoding="form",
        auth_header="X-Api-Key",
        auth_value="key-123456",
        body={"phone": "{to_digits}", "msg": "{text}", "json": 1},
    )
    await SmsGateway(session, settings).send(message())
    [got] = gateway.received
    assert (got.method, got.raw) == ("GET", b"")
    assert got.query == {"phone": "79161234567", "msg": TEXT, "json": "1"}
    assert got.headers["X-Api-Key"] == "key-123456"


async def test_a_key_taken_as_a_field(session: aiohttp.ClientSession, gateway: FakeGateway) -> None:
    settings = sms_settings(
        url_of(gateway, "/send"),
        method="GET",
        encoding="form",
        auth_header="",
        auth_value="api-key-987654",
        body={"api_id": "{auth}", "to": "{to_digits}", "msg": "{text}"},
    )
    gateway.status, gateway.body = 400, "ERROR api_id api-key-987654 blocked"
    err = await failure(SmsGateway(session, settings))
    [got] = gateway.received
    assert got.query["api_id"] == "api-key-987654"
    assert "Authorization" not in got.headers
    assert "api-key-987654" not in err.detail


def test_a_text_holding_a_placeholder_is_sent_as_written() -> None:
    values = {"{to}": "+79161234567", "{text}": "call {to} {sender}", "{sender}": "ACME"}
    assert fill({"t": "{text}", "s": "{sender}!"}, values) == {
        "t": "call {to} {sender}",
        "s": "ACME!",
    }


def test_no_auth_header_without_a_value() -> None:
    request = build_request(sms_settings("http://127.0.0.1:9/x"), "+79161234567", "hi", "k1")
    assert request.headers == {"Idempotency-Key": "k1"}


# --- success rules -----------------------------------------------------------------------------
JSON_OK = {"success_json_field": "status", "success_json_value": "ok"}
RESULT_CODE = {"success_json_field": "result.code", "success_json_value": "0"}
ACCEPTED = {"success_json_field": "messages.0.accepted", "success_json_value": "true"}


@pytest.mark.parametrize(
    ("rules", "status", "body", "ok"),
    [
        ({}, 200, "anything", True),
        ({}, 202, "", True),
        ({}, 204, "", True),
        ({"success_status": [201]}, 200, "", False),
        (JSON_OK, 200, '{"status":"ok"}', True),
        (JSON_OK, 200, '{"status":"error","error":"balance"}', False),
        (RESULT_CODE, 200, '{"result":{"code":0}}', True),
        (RESULT_CODE, 200, '{"result":{"code":7}}', False),
        (ACCEPTED, 200, '{"messages":[{"accepted":true}]}', True),
        ({"success_json_field": "id"}, 200, '{"id":"m1"}', True),
        ({"success_json_field": "id"}, 200, '{"error":"x"}', False),
        ({"success_json_field": "id"}, 200, "not json", False),
        ({"success_body_contains": "ACCEPTED"}, 200, "100 ACCEPTED id=5", True),
        ({"success_body_contains": "ACCEPTED"}, 200, "ERROR 7", False),
    ],
)
async def test_success_rules(
    session: aiohttp.ClientSession,
    gateway: FakeGateway,
    rules: dict[str, Any],
    status: int,
    body: str,
    ok: bool,
) -> None:
    gateway.status, gateway.body = status, body
    transport = SmsGateway(session, sms_settings(url_of(gateway), **rules))
    if ok:
        assert (await transport.send(message())).status_code == status
    else:
        err = await failure(transport)
        assert not err.retryable  # the gateway answered and said no: trying again cannot help
        assert err.status_code == status


# --- failures ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (502, True), (503, True), (408, True), (429, True), (400, False),
     (401, False), (403, False), (404, False), (422, False), (301, False)],
)  # fmt: skip
async def test_http_errors(
    session: aiohttp.ClientSession, gateway: FakeGateway, status: int, retryable: bool
) -> None:
    gateway.status, gateway.body = status, f'{{"error": "failure {status}"}}'
    transport = SmsGateway(session, sms_settings(url_of(gateway), auth_value=TOKEN))
    err = await failure(transport)
    assert (err.retryable, err.status_code) == (retryable, status)
    assert f"HTTP {status}" in err.detail
    assert f"failure {status}" in err.detail  # the gateway's own words, for the admin


async def test_a_redirect_is_not_followed(
    session: aiohttp.ClientSession, gateway: FakeGateway
) -> None:
    gateway.status = 302
    err = await failure(SmsGateway(session, sms_settings(url_of(gateway))))
    assert (err.status_code, err.retryable) == (302, False)
    assert len(gateway.received) == 1


async def test_a_timeout_is_retryable(session: aiohttp.ClientSession, gateway: FakeGateway) -> None:
    gateway.delay = 5
    transport = SmsGateway(session, sms_settings(url_of(gateway), timeout=0.3))
    err = await failure(transport)
    assert err.retryable and err.status_code is None
    assert "no answer from 127.0.0.1 within 0.3 s" in err.detail


async def test_a_refused_connection_is_retryable(session: aiohttp.ClientSession) -> None:
    transport = SmsGateway(session, sms_settings(f"http://127.0.0.1:{free_port()}/send"))
    err = await failure(transport)
    assert err.retryable and err.status_code is None
    assert err.detail.startswith("cannot connect to 127.0.0.1")
    assert "refused" in err.detail.lower()


async def test_the_secret_never_appears_in_a_detail(
    session: aiohttp.ClientSession, gateway: FakeGateway
) -> None:
    # A gateway echoing the header it was sent (some do, in their error pages).
    gateway.status, gateway.body = 401, f"invalid credentials: Authorization: {TOKEN}"
    err = await failure(SmsGateway(session, sms_settings(url_of(gateway), auth_value=TOKEN)))
    assert "s3cr3t-token-value" not in err.detail and "***" in err.detail
    gateway.body = "token s3cr3t-token-value is unknown"
    err = await failure(SmsGateway(session, sms_settings(url_of(gateway), auth_value=TOKEN)))
    assert "s3cr3t" not in err.detail


async def test_a_message_without_text_fails_for_good(
    session: aiohttp.ClientSession, gateway: FakeGateway
) -> None:
    err = await failure(SmsGateway(session, sms_settings(url_of(gateway))), text="")
    assert not err.retryable and gateway.received == []


async def test_concurrent_sends_each_reach_the_gateway(
    session: aiohttp.ClientSession, gateway: FakeGateway
) -> None:
    transport = SmsGateway(session, sms_settings(url_of(gateway)))
    await asyncio.gather(*(transport.send(message(key=f"k{i}")) for i in range(5)))
    assert sorted(r.headers["Idempotency-Key"] for r in gateway.received) == [
        f"k{i}" for i in range(5)
    ]


# --- settings ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "message_part"),
    [
        ({"method": "GET", "encoding": "json"}, 'use encoding = "form"'),
        ({"encoding": "form", "body": {"a": {"b": "{to}"}}}, "flat key/value pairs"),
        ({"url": "ftp://gateway"}, "http:// or https://"),
        ({"success_status": [42]}, "not an HTTP status code"),
        ({"success_json_value": "ok"}, "needs success_json_field"),
        ({"body": "[1, 2]"}, "dictionary"),
        ({"body": "{not json"}, "not a JSON object"),
    ],
)
def test_bad_settings_are_refused(values: dict[str, Any], message_part: str) -> None:
    with pytest.raises(ValueError) as caught:
        SmsSettings.model_validate({"url": "http://127.0.0.1:9/x", **values})
    assert message_part in str(caught.value)


# --- the sample configuration's examples -------------------------------------------------------
def _sample_examples() -> list[dict[str, Any]]:
    """The commented `[sms]` examples of etc/callcenterd.toml, uncommented and parsed."""
    sample = Path(__file__).resolve().parents[2] / "etc" / "callcenterd.toml"
    blocks: list[list[str]] = []
    for line in sample.read_text(encoding="utf-8").splitlines():
        if line.startswith("# [sms]"):
            blocks.append([])
        elif blocks and line.startswith("# ") and "=" in line:
            blocks[-1].append(line[2:])
        elif blocks and line.strip() and not line.startswith("#"):
            break
    return [tomllib.loads("\n".join(block)) for block in blocks]


async def test_the_sample_examples_work_against_a_gateway(
    session: aiohttp.ClientSession, gateway: FakeGateway
) -> None:
    bearer_json, basic_form = _sample_examples()
    assert "example" in bearer_json["url"] and "example" in basic_form["url"]
    gateway.status, gateway.body = 202, '{"status": "accepted", "id": "m-9"}'
    settings = SmsSettings.model_validate({**bearer_json, "url": url_of(gateway)})
    await SmsGateway(session, settings).send(message(text="Hello"))
    got = gateway.received[-1]
    assert got.headers["Authorization"] == "Bearer <token>"
    assert got.json == {
        "messages": [{"to": "+79161234567", "from": "ACME", "text": "Hello"}],
        "reference": "sms:test:1",
    }
    gateway.status, gateway.body = 201, '{"sid": "SM1"}'
    settings = SmsSettings.model_validate({**basic_form, "url": url_of(gateway)})
    await SmsGateway(session, settings).send(message(text="Hello"))
    got = gateway.received[-1]
    assert got.headers["Authorization"].startswith("Basic ")
    assert got.form == {"To": "+79161234567", "From": "+15550001111", "Body": "Hello"}

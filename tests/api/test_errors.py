"""Every failure answers JSON in the contract's shape, with a request ID, and loses nothing."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd import keys
from tests.api.conftest import Actor
from tests.api.helpers import expect_error, query_db, user_body

USERS = "/api/admin/users"


# --- routing -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    ["/api/nope", "/api/v1/admin/nope", "/nope", "/api/admin/users/x/y/z", "/api/v2/auth/me"],
)
async def test_unknown_route_is_a_json_404(client: TestClient[Any, Any], path: str) -> None:
    response = await client.get(path, headers={"Accept": "text/html"})
    body = await expect_error(response, 404, "NOT_FOUND")
    assert body["type"] == "not_found"
    assert body["field"] is None
    assert body["detail"] == "No such route"  # the path is not echoed back
    assert "<html" not in (await response.text()).lower()


async def test_wrong_method_is_a_json_405(client: TestClient[Any, Any], admin: Actor) -> None:
    response = await client.patch(USERS, json={}, headers=admin.headers)
    body = await expect_error(response, 405, "METHOD_NOT_ALLOWED")
    assert body["type"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(",")) >= {"GET", "POST"}
    response = await client.delete("/api/auth/login")
    await expect_error(response, 405, "METHOD_NOT_ALLOWED")


# --- request bodies ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b'{"username": "x",', "json_invalid"),
        (b"\xff\xfe not utf-8", "json_invalid"),
        (b"", "missing"),
        (b"null", "missing"),
    ],
)
async def test_unreadable_body_is_422(
    client: TestClient[Any, Any], admin: Actor, raw: bytes, kind: str
) -> None:
    headers = {**admin.headers, "Content-Type": "application/json"}
    response = await client.post(USERS, data=raw, headers=headers)
    body = await expect_error(response, 422, "DB_003")
    assert body["type"] == "validation_error"
    assert body["detail"] == [{"loc": ["body"], "msg": body["detail"][0]["msg"], "type": kind}]


@pytest.mark.parametrize("payload", [[], [{"username": "x"}], "a string", 42, True])
async def test_body_that_is_not_an_object_is_422(
    client: TestClient[Any, Any], admin: Actor, payload: Any
) -> None:
    response = await client.post(USERS, json=payload, headers=admin.headers)
    body = await expect_error(response, 422, "DB_003")
    assert body["detail"][0]["loc"] == ["body"]
    assert body["detail"][0]["type"] == "model_type"


async def test_unknown_field_is_422(client: TestClient[Any, Any], admin: Actor) -> None:
    body = {**user_body("typo"), "rolee": "admin"}
    response = await client.post(USERS, json=body, headers=admin.headers)
    error = await expect_error(response, 422, "DB_003")
    assert error["field"] == "rolee"
    assert error["detail"] == [
        {
            "loc": ["body", "rolee"],
            "msg": "Extra inputs are not permitted",
            "type": "extra_forbidden",
        }
    ]


async def test_read_only_fields_sent_back_are_ignored(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    """A client may PUT back what it GOT: id and timestamps are ignored, not refused."""
    response = await client.put(
        f"{USERS}/{admin.user['id']}",
        json={**admin.user, "id": "forged", "created_at": "2000-01-01T00:00:00Z"},
        headers=admin.headers,
    )
    assert response.status == 200, await response.text()
    updated = await response.json()
    assert updated["id"] == admin.user["id"]
    assert updated["created_at"] == admin.user["created_at"]


async def test_422_never_echoes_the_input(client: TestClient[Any, Any], admin: Actor) -> None:
    body = {**user_body("echo"), "password": "pw5ch"}
    response = await client.post(USERS, json=body, headers=admin.headers)
    await expect_error(response, 422, "DB_003")
    assert "pw5ch" not in await response.text()


# --- request IDs ---------------------------------------------------------------------------
async def test_request_id_is_echoed(client: TestClient[Any, Any]) -> None:
    for path in ("/healthz", "/api/nope"):
        response = await client.get(path, headers={"X-Request-ID": "abc-123.DEF_4"})
        assert response.headers["X-Request-ID"] == "abc-123.DEF_4"


@pytest.mark.parametrize("sent", [None, "", "has space", "x" * 65, "semi;colon", "ünï"])
async def test_request_id_is_generated_when_missing_or_unsafe(
    client: TestClient[Any, Any], sent: str | None
) -> None:
    headers = {} if sent is None else {"X-Request-ID": sent}
    response = await client.get("/api/auth/me", headers=headers)
    await expect_error(response, 401, "AUTH_001")
    generated = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    again = await client.get("/api/auth/me", headers=headers)
    assert again.headers["X-Request-ID"] != generated


# --- crashes -------------------------------------------------------------------------------
async def test_handler_crash_is_a_json_500_without_traceback(
    client: TestClient[Any, Any], admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("kaboom: internal detail /etc/secret")

    monkeypatch.setattr(client.app[keys.SERVICES].users, "list", explode)
    response = await client.get(USERS, headers={**admin.headers, "X-Request-ID": "crash-1"})
    body = await expect_error(response, 500, "INTERNAL")
    assert body["type"] == "internal_error"
    assert response.headers["X-Request-ID"] == "crash-1"
    text = await response.text()
    for leak in ("Traceback", "kaboom", "RuntimeError", "/etc/secret", ".py"):
        assert leak not in text
    # The app keeps serving.
    monkeypatch.undo()
    assert (await client.get(USERS, headers=admin.headers)).status == 200


async def test_crash_inside_a_transaction_rolls_back(
    client: TestClient[Any, Any], admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the user row was written (in the audit step) leaves no half user."""
    import callcenterd.services.users as users_module

    async def broken_audit(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("audit store broken")

    before = query_db(client, "SELECT COUNT(*) FROM users")[0][0]
    monkeypatch.setattr(users_module, "audit", broken_audit)
    response = await client.post(USERS, json=user_body("halfway"), headers=admin.headers)
    await expect_error(response, 500, "INTERNAL")
    monkeypatch.undo()
    assert query_db(client, "SELECT COUNT(*) FROM users")[0][0] == before
    # And the writer is usable again: the same user can now be created.
    response = await client.post(USERS, json=user_body("halfway"), headers=admin.headers)
    assert response.status == 201, await response.text()


# --- nothing stored is lost ----------------------------------------------------------------
async def test_failed_requests_lose_nothing(client: TestClient[Any, Any], admin: Actor) -> None:
    response = await client.post(USERS, json=user_body("original"), headers=admin.headers)
    original = await response.json()
    listed = await (await client.get(USERS, headers=admin.headers)).json()

    failures = [
        # Duplicate username (another case), with every other field different.
        ("POST", USERS, {**user_body("ORIGINAL", "admin"), "email": "x@example.com"}, 409),
        ("POST", USERS, {**user_body("original2"), "email": "ORIGINAL@example.com"}, 409),
        ("POST", USERS, {**user_body("o"), "name": "Clobber"}, 422),
        ("PUT", f"{USERS}/{original['id']}", {"name": "Clobber", "email": "bad"}, 422),
        ("PUT", f"{USERS}/{original['id']}", {"name": "Clobber", "username": "admin"}, 409),
        ("PUT", f"{USERS}/{admin.user['id']}", {"name": "Clobber", "role": "manager"}, 409),
    ]
    for method, url, body, status in failures:
        response = await client.request(method, url, json=body, headers=admin.headers)
        assert response.status == status, (method, url, body, await response.text())

    assert await (await client.get(USERS, headers=admin.headers)).json() == listed
    rows = query_db(client, "SELECT username, email, name, role FROM users ORDER BY username")
    assert [tuple(row) for row in rows] == [
        ("admin", "admin@example.com", "Administrator", "admin"),
        ("original", "original@example.com", "User original", "manager"),
    ]


async def test_oversized_body_is_a_json_413(client: TestClient[Any, Any], admin: Actor) -> None:
    huge = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    headers = {**admin.headers, "Content-Type": "application/json"}
    response = await client.post(USERS, data=huge, headers=headers)
    body = await expect_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert body["type"] == "payload_too_large"


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the interpreter's recursion limit
        b'{"name": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}",  # parses, deeper than allowed
        b'{"name": ' + b"9" * 5000 + b"}",  # over Python's integer-string digit limit
        b'{"name": NaN}',
        b'{"name": -Infinity}',
        b'{"name": 1e999}',  # a float that would overflow to infinity
    ],
    ids=["recursion", "depth", "long-int", "nan", "infinity", "overflow"],
)
async def test_hostile_json_is_422(client: TestClient[Any, Any], admin: Actor, raw: bytes) -> None:
    headers = {**admin.headers, "Content-Type": "application/json"}
    response = await client.post(USERS, data=raw, headers=headers)
    body = await expect_error(response, 422, "DB_003")
    assert body["detail"][0]["type"] == "json_invalid"
    assert body["detail"][0]["loc"] == ["body"]
    assert len(await response.read()) < 1000  # nothing of the input is echoed


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_a_body_that_is_not_json_is_415(
    client: TestClient[Any, Any], admin: Actor, content_type: str | None
) -> None:
    headers = dict(admin.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await client.post(USERS, data=b'{"username": "x"}', headers=headers)
    body = await expect_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert body["type"] == "unsupported_media_type"


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/x+json"])
async def test_json_media_types_are_accepted(
    client: TestClient[Any, Any], admin: Actor, content_type: str
) -> None:
    headers = {**admin.headers, "Content-Type": content_type}
    raw = json.dumps(user_body("typed")).encode()
    response = await client.post(USERS, data=raw, headers=headers)
    assert response.status == 201, await response.text()


async def test_body_limit_is_configured_and_refused_unread(make_client: Any) -> None:
    client = await make_client(http={"max_body_bytes": 2048})
    raw = json.dumps({"username": "admin", "password": "p" * 4096}).encode()
    response = await client.post(
        "/api/auth/login", data=raw, headers={"Content-Type": "application/json"}
    )
    body = await expect_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert "p" * 100 not in body["detail"]
    small = await client.post("/api/auth/login", json={"username": "admin", "password": "x"})
    await expect_error(small, 401, "AUTH_001")

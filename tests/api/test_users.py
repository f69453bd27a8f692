"""/api/admin/users: listing, validation, uniqueness, operators, updates, deletes, audit."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import ADMIN_PASSWORD, PASSWORD, Actor, bearer, login
from tests.api.helpers import expect_error, query_db, user_body
from tests.conftest import FakeClock

USERS = "/api/admin/users"


async def _create(client: TestClient[Any, Any], admin: Actor, body: dict[str, Any]) -> Any:
    response = await client.post(USERS, json=body, headers=admin.headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def _put(client: TestClient[Any, Any], admin: Actor, user_id: str, body: Any) -> Any:
    return await client.put(f"{USERS}/{user_id}", json=body, headers=admin.headers)


async def _operator(client: TestClient[Any, Any], admin: Actor, user_id: str) -> Any:
    response = await client.get(f"{USERS}/{user_id}/operator", headers=admin.headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def _list(client: TestClient[Any, Any], admin: Actor, query: str = "") -> list[Any]:
    response = await client.get(f"{USERS}{query}", headers=admin.headers)
    assert response.status == 200, await response.text()
    users: list[Any] = await response.json()
    return users


# --- list ----------------------------------------------------------------------------------
async def test_list_pages_and_filters(
    client: TestClient[Any, Any], admin: Actor, clock: FakeClock
) -> None:
    for username, role in (("man1", "manager"), ("op1", "operator"), ("sup1", "supervisor")):
        clock.advance(seconds=1)  # distinct creation times: the list is in creation order
        await _create(client, admin, user_body(username, role))
    everyone = await _list(client, admin)
    assert [u["username"] for u in everyone] == ["admin", "man1", "op1", "sup1"]
    assert all("password" not in u and "password_hash" not in u for u in everyone)

    page = await _list(client, admin, "?skip=1&limit=2")
    assert [u["username"] for u in page] == ["man1", "op1"]
    assert [u["username"] for u in await _list(client, admin, "?limit=1")] == ["admin"]
    assert await _list(client, admin, "?skip=10") == []
    assert [u["username"] for u in await _list(client, admin, "?role=operator")] == ["op1"]
    assert [u["id"] for u in await _list(client, admin, "?role=admin")] == [admin.user["id"]]
    assert [u["username"] for u in await _list(client, admin, "?role=supervisor&skip=1")] == []


async def test_list_pages_are_stable_when_times_tie(
    client: TestClient[Any, Any], admin: Actor, actors: dict[str, Actor]
) -> None:
    """The fake clock stands still here: pages still partition the whole list."""
    everyone = [u["id"] for u in await _list(client, admin)]
    assert len(everyone) == 4
    pages = [await _list(client, admin, f"?skip={skip}&limit=1") for skip in range(4)]
    assert [page[0]["id"] for page in pages] == everyone


@pytest.mark.parametrize(
    ("query", "field"),
    [("?skip=-1", "skip"), ("?limit=0", "limit"), ("?limit=x", "limit"), ("?role=boss", "role")],
)
async def test_list_query_is_validated(
    client: TestClient[Any, Any], admin: Actor, query: str, field: str
) -> None:
    response = await client.get(f"{USERS}{query}", headers=admin.headers)
    body = await expect_error(response, 422, "DB_003")
    assert body["field"] == field
    assert body["detail"][0]["loc"] == ["query", field]


async def test_list_omits_deleted_users(client: TestClient[Any, Any], admin: Actor) -> None:
    user = await _create(client, admin, user_body("temp"))
    assert (await client.delete(f"{USERS}/{user['id']}", headers=admin.headers)).status == 200
    assert "temp" not in [u["username"] for u in await _list(client, admin)]


# --- create: validation --------------------------------------------------------------------
INVALID_CREATES = [
    pytest.param({"username": "ab"}, "username", id="username-2-chars"),
    pytest.param({"username": "u" * 51}, "username", id="username-51-chars"),
    pytest.param({"username": "has space"}, "username", id="username-space"),
    pytest.param({"email": "not-an-email"}, "email", id="email-no-at"),
    pytest.param({"email": "a@b"}, "email", id="email-no-dot"),
    pytest.param({"email": "a@b.c@d"}, "email", id="email-two-ats"),
    pytest.param({"password": "12345"}, "password", id="password-5-chars"),
    pytest.param({"name": ""}, "name", id="name-empty"),
    pytest.param({"role": "boss"}, "role", id="role-unknown"),
    pytest.param({"role": "operator", "extension": None}, "extension", id="operator-no-ext"),
    pytest.param({"role": "operator", "extension": "12"}, "extension", id="extension-2"),
    pytest.param({"role": "operator", "extension": "123456"}, "extension", id="extension-6"),
    pytest.param({"role": "operator", "extension": "12a4"}, "extension", id="extension-letter"),
    pytest.param({"group_id": str(uuid.uuid4())}, "group_id", id="unknown-group"),
    pytest.param({"colour": "blue"}, "colour", id="unknown-field"),
]


@pytest.mark.parametrize(("change", "field"), INVALID_CREATES)
async def test_create_is_validated(
    client: TestClient[Any, Any], admin: Actor, change: dict[str, Any], field: str
) -> None:
    body = {**user_body("newbie"), **change}
    response = await client.post(USERS, json=body, headers=admin.headers)
    error = await expect_error(response, 422, "DB_003")
    assert error["type"] == "validation_error"
    assert error["field"] == field
    assert isinstance(error["detail"], list) and error["detail"]
    first = error["detail"][0]
    assert first["loc"] == ["body", field]
    assert isinstance(first["msg"], str) and first["msg"]
    assert isinstance(first["type"], str) and first["type"]
    assert [u["username"] for u in await _list(client, admin)] == ["admin"]


async def test_username_length_bounds_are_inclusive(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    await _create(client, admin, user_body("abc"))
    await _create(client, admin, {**user_body("x" * 50), "email": "long@example.com"})


async def test_username_too_short_matches_the_contract_form(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    response = await client.post(USERS, json=user_body("ab"), headers=admin.headers)
    error = await expect_error(response, 422, "DB_003")
    [item] = error["detail"]
    assert item["loc"] == ["body", "username"]
    assert item["type"] == "string_too_short"
    assert item["ctx"] == {"min_length": 3}
    assert "3" in item["msg"]


async def test_every_invalid_field_is_listed(client: TestClient[Any, Any], admin: Actor) -> None:
    body = {**user_body("ab"), "email": "bad", "password": "123"}
    response = await client.post(USERS, json=body, headers=admin.headers)
    error = await expect_error(response, 422, "DB_003")
    assert [item["loc"] for item in error["detail"]] == [
        ["body", "username"],
        ["body", "email"],
        ["body", "password"],
    ]


async def test_valid_extensions(client: TestClient[Any, Any], admin: Actor) -> None:
    for number, extension in enumerate(("100", "12345")):
        body = user_body(f"op{number}", "operator", extension=extension)
        created = await _create(client, admin, body)
        assert (await _operator(client, admin, created["id"]))["extension"] == extension


async def test_every_role_may_have_its_own_phone(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    """Admins, managers and supervisors are rung on their own extension to supervise calls."""
    await _create(client, admin, user_body("oper", "operator", extension="1001"))
    for role, extension in (("admin", "2001"), ("manager", "2002"), ("supervisor", "2003")):
        created = await _create(client, admin, user_body(f"{role}2", role, extension=extension))
        assert created["extension"] == extension
        assert await _operator(client, admin, created["id"]) is None  # not an operator
    # One phone, one user, across operators and the others.
    for body in (
        user_body("dup1", "supervisor", extension="1001"),
        user_body("dup2", "operator", extension="2003"),
    ):
        response = await client.post(USERS, json=body, headers=admin.headers)
        assert (await expect_error(response, 409, "USER_003"))["field"] == "extension"


# --- create: uniqueness --------------------------------------------------------------------
async def test_duplicate_username_is_refused_case_insensitively(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    await _create(client, admin, user_body("alice"))
    body = {**user_body("ALICE"), "email": "other@example.com"}
    response = await client.post(USERS, json=body, headers=admin.headers)
    error = await expect_error(response, 409, "USER_001")
    assert error["field"] == "username"


async def test_duplicate_email_is_refused(client: TestClient[Any, Any], admin: Actor) -> None:
    await _create(client, admin, user_body("alice"))
    body = {**user_body("bob"), "email": "Alice@EXAMPLE.com"}
    response = await client.post(USERS, json=body, headers=admin.headers)
    error = await expect_error(response, 409, "USER_002")
    assert error["field"] == "email"


async def test_duplicate_extension_is_refused(client: TestClient[Any, Any], admin: Actor) -> None:
    await _create(client, admin, user_body("op1", "operator", extension="1001"))
    response = await client.post(
        USERS, json=user_body("op2", "operator", extension="1001"), headers=admin.headers
    )
    error = await expect_error(response, 409, "USER_003")
    assert error["field"] == "extension"
    assert [u["username"] for u in await _list(client, admin, "?role=operator")] == ["op1"]


# --- operators -----------------------------------------------------------------------------
async def test_creating_an_operator_makes_an_operator_row(
    client: TestClient[Any, Any], admin: Actor, group: dict[str, Any]
) -> None:
    body = user_body(
        "agent",
        "operator",
        extension="1234",
        group_id=group["id"],
        skills=["sales", "english", "sales"],
    )
    user = await _create(client, admin, body)
    assert user["role"] == "operator"
    assert user["group_id"] == group["id"]
    operator = await _operator(client, admin, user["id"])
    assert operator["user_id"] == user["id"]
    assert operator["extension"] == "1234"
    assert operator["status"] == "offline"
    assert operator["skills"] == ["english", "sales"]
    assert operator["group_id"] == group["id"]
    assert operator["max_concurrent_calls"] == 1
    assert operator["current_calls"] == 0
    assert operator["id"] != user["id"]


async def test_non_operator_has_no_operator_row(client: TestClient[Any, Any], admin: Actor) -> None:
    response = await client.get(f"{USERS}/{admin.user['id']}/operator", headers=admin.headers)
    assert response.status == 200
    assert await response.text() == "null"


# --- update --------------------------------------------------------------------------------
async def test_partial_update_changes_only_what_is_sent(
    client: TestClient[Any, Any], admin: Actor, group: dict[str, Any]
) -> None:
    user = await _create(client, admin, user_body("partial", group_id=group["id"]))
    response = await _put(client, admin, user["id"], {"name": "New Name"})
    assert response.status == 200
    updated = await response.json()
    assert updated["name"] == "New Name"
    for key in ("id", "username", "email", "role", "group_id", "is_active", "created_at"):
        assert updated[key] == user[key], key
    assert updated["updated_at"] >= user["updated_at"]
    # The password was not touched either.
    token = await login(client, "partial", PASSWORD)
    assert (await client.get("/api/auth/me", headers=bearer(token))).status == 200


async def test_update_can_clear_the_group(
    client: TestClient[Any, Any], admin: Actor, group: dict[str, Any]
) -> None:
    user = await _create(client, admin, user_body("grouped", group_id=group["id"]))
    response = await _put(client, admin, user["id"], {"group_id": None})
    assert response.status == 200
    assert (await response.json())["group_id"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": None}, "name"),
        ({"username": None}, "username"),
        ({"role": None}, "role"),
        ({"password": "123"}, "password"),
        ({"email": "nope"}, "email"),
        ({"extension": "1"}, "extension"),
        ({"group_id": "no-such-group"}, "group_id"),
        ({"nickname": "x"}, "nickname"),
    ],
)
async def test_update_is_validated(
    client: TestClient[Any, Any], admin: Actor, change: dict[str, Any], field: str
) -> None:
    user = await _create(client, admin, user_body("target"))
    error = await expect_error(await _put(client, admin, user["id"], change), 422, "DB_003")
    assert error["field"] == field
    assert error["detail"][0]["loc"] == ["body", field]


async def test_update_uniqueness(client: TestClient[Any, Any], admin: Actor) -> None:
    await _create(client, admin, user_body("first", "operator", extension="1001"))
    second = await _create(client, admin, user_body("second", "operator", extension="1002"))
    for change, code in (
        ({"username": "FIRST"}, "USER_001"),
        ({"email": "first@example.com"}, "USER_002"),
        ({"extension": "1001"}, "USER_003"),
    ):
        await expect_error(await _put(client, admin, second["id"], change), 409, code)
    # Re-sending one's own values is not a conflict.
    same = {"username": "Second", "email": "second@example.com", "extension": "1002"}
    response = await _put(client, admin, second["id"], same)
    assert response.status == 200
    assert (await response.json())["username"] == "Second"


async def test_operator_to_manager_and_back(
    client: TestClient[Any, Any], admin: Actor, group: dict[str, Any]
) -> None:
    body = user_body("switch", "operator", extension="1500", group_id=group["id"], skills=["vip"])
    user = await _create(client, admin, body)
    operator = await _operator(client, admin, user["id"])

    response = await _put(client, admin, user["id"], {"role": "manager"})
    assert response.status == 200
    assert (await response.json())["role"] == "manager"
    assert await _operator(client, admin, user["id"]) is None
    # The operator's extension went with the operator row: it is free for someone else...
    assert (await response.json())["extension"] is None
    other = await _create(client, admin, user_body("taker", "operator", extension="1500"))
    # ...and a manager may have a phone of their own (rung to supervise), a free one.
    await expect_error(
        await _put(client, admin, user["id"], {"extension": "1500"}), 409, "USER_003"
    )
    response = await _put(client, admin, user["id"], {"extension": "1600"})
    assert (await response.json())["extension"] == "1600"
    cleared = await _put(client, admin, user["id"], {"extension": None})
    assert (await cleared.json())["extension"] is None

    # Back to operator: an extension is needed again, and must be free.
    error = await expect_error(
        await _put(client, admin, user["id"], {"role": "operator"}), 422, "DB_003"
    )
    assert error["field"] == "extension"
    await expect_error(
        await _put(client, admin, user["id"], {"role": "operator", "extension": "1500"}),
        409,
        "USER_003",
    )
    await _put(client, admin, user["id"], {"extension": "1600"})
    # Their own phone becomes the operator's extension.
    response = await _put(client, admin, user["id"], {"role": "operator"})
    assert response.status == 200
    assert (await response.json())["role"] == "operator"
    revived = await _operator(client, admin, user["id"])
    assert revived["id"] == operator["id"]  # the same operator row, kept for its history
    assert revived["extension"] == "1600"
    assert revived["status"] == "offline"
    # The operator row follows the user's group, which did not change.
    assert revived["group_id"] == group["id"]
    assert (await _operator(client, admin, other["id"]))["extension"] == "1500"


async def test_manager_in_a_group_becomes_an_operator_of_that_group(
    client: TestClient[Any, Any], admin: Actor, group: dict[str, Any]
) -> None:
    user = await _create(client, admin, user_body("promoted", group_id=group["id"]))
    response = await _put(client, admin, user["id"], {"role": "operator", "extension": "1700"})
    assert response.status == 200
    operator = await _operator(client, admin, user["id"])
    assert operator["extension"] == "1700"
    assert operator["group_id"] == group["id"]


async def test_operator_fields_update_the_operator_row(
    client: TestClient[Any, Any], admin: Actor, group: dict[str, Any]
) -> None:
    user = await _create(client, admin, user_body("agent", "operator", extension="1800"))
    change = {
        "extension": "1801",
        "skills": ["b", "a"],
        "max_concurrent_calls": 3,
        "group_id": group["id"],
    }
    assert (await _put(client, admin, user["id"], change)).status == 200
    operator = await _operator(client, admin, user["id"])
    assert operator["extension"] == "1801"
    assert operator["skills"] == ["a", "b"]
    assert operator["max_concurrent_calls"] == 3
    assert operator["group_id"] == group["id"]


async def test_unknown_user_is_user_004(client: TestClient[Any, Any], admin: Actor) -> None:
    missing = str(uuid.uuid4())
    await expect_error(await _put(client, admin, missing, {"name": "X"}), 404, "USER_004")
    response = await client.delete(f"{USERS}/{missing}", headers=admin.headers)
    await expect_error(response, 404, "USER_004")
    response = await client.get(f"{USERS}/{missing}/operator", headers=admin.headers)
    await expect_error(response, 404, "USER_004")


# --- delete --------------------------------------------------------------------------------
async def test_delete_user_and_reuse_the_username(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    user = await _create(client, admin, user_body("leaver", "operator", extension="1900"))
    response = await client.delete(f"{USERS}/{user['id']}", headers=admin.headers)
    assert response.status == 200
    assert (await response.json())["success"] is True

    response = await client.delete(f"{USERS}/{user['id']}", headers=admin.headers)
    await expect_error(response, 404, "USER_004")
    response = await client.get(f"{USERS}/{user['id']}/operator", headers=admin.headers)
    await expect_error(response, 404, "USER_004")
    await expect_error(await _put(client, admin, user["id"], {"name": "Z"}), 404, "USER_004")

    # Username, email and extension are all free again.
    again = await _create(client, admin, user_body("LEAVER", "operator", extension="1900"))
    assert again["id"] != user["id"]
    assert (await _operator(client, admin, again["id"]))["extension"] == "1900"
    assert sorted(u["username"] for u in await _list(client, admin)) == ["LEAVER", "admin"]


async def test_last_admin_cannot_be_removed(client: TestClient[Any, Any], admin: Actor) -> None:
    admin_id = admin.user["id"]
    response = await client.delete(f"{USERS}/{admin_id}", headers=admin.headers)
    await expect_error(response, 409, "USER_005")
    await expect_error(await _put(client, admin, admin_id, {"role": "manager"}), 409, "USER_005")
    await expect_error(await _put(client, admin, admin_id, {"is_active": False}), 409, "USER_005")
    me = await (await client.get("/api/auth/me", headers=admin.headers)).json()
    assert me["role"] == "admin" and me["is_active"] is True


async def test_an_admin_can_go_once_another_is_active(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    second = await _create(client, admin, user_body("admin2", "admin"))
    # An inactive second admin does not count.
    assert (await _put(client, admin, second["id"], {"is_active": False})).status == 200
    response = await client.delete(f"{USERS}/{admin.user['id']}", headers=admin.headers)
    await expect_error(response, 409, "USER_005")

    assert (await _put(client, admin, second["id"], {"is_active": True})).status == 200
    response = await _put(client, admin, admin.user["id"], {"role": "manager"})
    assert response.status == 200
    # The demoted admin's token now carries a manager: admin endpoints refuse it.
    await expect_error(await client.get(USERS, headers=admin.headers), 403, "AUTH_003")
    token = await login(client, "admin2", PASSWORD)
    response = await client.delete(f"{USERS}/{second['id']}", headers=bearer(token))
    await expect_error(response, 409, "USER_005")


async def test_an_inactive_admin_can_be_demoted_or_deleted(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    """Only *active* admins are protected: the one active admin stays either way."""
    second = await _create(client, admin, user_body("admin2", "admin"))
    assert (await _put(client, admin, second["id"], {"is_active": False})).status == 200
    response = await _put(client, admin, second["id"], {"role": "manager"})
    assert response.status == 200, await response.text()
    assert (await response.json())["role"] == "manager"
    third = await _create(client, admin, user_body("admin3", "admin"))
    assert (await _put(client, admin, third["id"], {"is_active": False})).status == 200
    response = await client.delete(f"{USERS}/{third['id']}", headers=admin.headers)
    assert response.status == 200


# --- secrets and audit ---------------------------------------------------------------------
async def test_passwords_never_appear_in_answers(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    texts: list[str] = []

    async def call(method: str, url: str, body: Any = None) -> Any:
        response = await client.request(method, url, json=body, headers=admin.headers)
        texts.append(await response.text())
        return response

    created = await (await call("POST", USERS, user_body("secretive", "operator"))).json()
    await call("POST", USERS, user_body("secretive"))  # a 409
    await call("POST", USERS, {**user_body("other"), "password": "pw5ch"})  # a 422
    await call("PUT", f"{USERS}/{created['id']}", {"password": "another-secret"})
    await call("GET", USERS)
    await call("GET", f"{USERS}/{created['id']}/operator")
    login_response = await client.post(
        "/api/auth/login", json={"username": "secretive", "password": "another-secret"}
    )
    texts.append(await login_response.text())
    texts.append(await (await client.get("/api/auth/me", headers=admin.headers)).text())
    await call("DELETE", f"{USERS}/{created['id']}")
    joined = "\n".join(texts)
    for secret in ("secret-pw", "another-secret", "pw5ch", ADMIN_PASSWORD, "password_hash"):
        assert secret not in joined, secret
    assert "$2b$" not in joined  # no bcrypt hash


async def test_changes_are_audited_without_passwords(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    user = await _create(client, admin, user_body("audited"))
    response = await _put(client, admin, user["id"], {"name": "Audited", "password": "changed-pw"})
    assert response.status == 200
    response = await client.delete(
        f"{USERS}/{user['id']}", headers={**admin.headers, "X-Request-ID": "req-audit-1"}
    )
    assert response.status == 200

    rows = query_db(
        client,
        "SELECT actor_id, action, changes, request_id, at FROM audit_log"
        " WHERE entity = 'user' AND entity_id = ? ORDER BY id",
        (user["id"],),
    )
    assert [row["action"] for row in rows] == ["create", "update", "delete"]
    assert all(row["actor_id"] == admin.user["id"] for row in rows)
    assert all(row["request_id"] for row in rows)
    assert rows[2]["request_id"] == "req-audit-1"
    created, updated, deleted = (json.loads(row["changes"]) for row in rows)
    assert created["username"] == "audited" and created["role"] == "manager"
    assert "password" not in created
    assert updated == {"name": "Audited", "password": "(changed)"}
    assert deleted == {"username": "audited"}
    everything = json.dumps([dict(row) for row in rows])
    for secret in ("secret-pw", "changed-pw", "$2b$"):
        assert secret not in everything
    # And no hash leaks into the log through another entity.
    log = json.dumps([dict(r) for r in query_db(client, "SELECT changes FROM audit_log")])
    assert "$2b$" not in log and "changed-pw" not in log


async def test_failed_create_writes_no_audit_row(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    await _create(client, admin, user_body("once"))
    before = query_db(client, "SELECT COUNT(*) FROM audit_log")[0][0]
    response = await client.post(USERS, json=user_body("once"), headers=admin.headers)
    await expect_error(response, 409, "USER_001")
    assert query_db(client, "SELECT COUNT(*) FROM audit_log")[0][0] == before


async def test_username_uniqueness_ignores_case_beyond_ascii(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    await _create(client, admin, user_body("Оператор", email="first@example.com"))
    response = await client.post(
        USERS, json=user_body("оператор", email="second@example.com"), headers=admin.headers
    )
    await expect_error(response, 409, "USER_001")

"""/api/admin/groups: CRUD, unique names, references, and who sees which group."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import PASSWORD, Actor, bearer, login
from tests.api.helpers import expect_error, query_db, user_body

GROUPS = "/api/admin/groups"


async def _create_group(client: TestClient[Any, Any], admin: Actor, name: str, **extra: Any) -> Any:
    response = await client.post(GROUPS, json={"name": name, **extra}, headers=admin.headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def _names(client: TestClient[Any, Any], actor: Actor) -> list[str]:
    response = await client.get(GROUPS, headers=actor.headers)
    assert response.status == 200, await response.text()
    return [g["name"] for g in await response.json()]


async def test_group_crud(client: TestClient[Any, Any], admin: Actor) -> None:
    created = await _create_group(client, admin, "Support", description="First line")
    assert set(created) == {"id", "name", "description", "created_at", "updated_at"}
    assert created["name"] == "Support"
    assert created["description"] == "First line"
    url = f"{GROUPS}/{created['id']}"

    response = await client.get(url, headers=admin.headers)
    assert response.status == 200
    assert await response.json() == created
    assert await _names(client, admin) == ["Support"]

    response = await client.put(url, json={"name": "Help desk"}, headers=admin.headers)
    assert response.status == 200
    updated = await response.json()
    assert updated["name"] == "Help desk"
    assert updated["description"] == "First line"  # partial: untouched
    response = await client.put(url, json={"description": ""}, headers=admin.headers)
    assert (await response.json())["description"] == ""

    response = await client.delete(url, headers=admin.headers)
    assert response.status == 200
    assert (await response.json())["success"] is True
    await expect_error(await client.get(url, headers=admin.headers), 404, "DB_002")
    await expect_error(await client.delete(url, headers=admin.headers), 404, "DB_002")
    response = await client.put(url, json={"name": "Ghost"}, headers=admin.headers)
    await expect_error(response, 404, "DB_002")
    assert await _names(client, admin) == []


async def test_groups_are_listed_by_name(client: TestClient[Any, Any], admin: Actor) -> None:
    for name in ("charlie", "Alpha", "bravo"):
        await _create_group(client, admin, name)
    assert await _names(client, admin) == ["Alpha", "bravo", "charlie"]


async def test_group_changes_are_audited(client: TestClient[Any, Any], admin: Actor) -> None:
    created = await _create_group(client, admin, "Audit me")
    url = f"{GROUPS}/{created['id']}"
    assert (await client.put(url, json={"name": "Audited"}, headers=admin.headers)).status == 200
    assert (await client.delete(url, headers=admin.headers)).status == 200
    rows = query_db(
        client,
        "SELECT action, actor_id FROM audit_log WHERE entity = 'group' AND entity_id = ?"
        " ORDER BY id",
        (created["id"],),
    )
    assert [row["action"] for row in rows] == ["create", "update", "delete"]
    assert {row["actor_id"] for row in rows} == {admin.user["id"]}


async def test_duplicate_group_name_is_db_004(client: TestClient[Any, Any], admin: Actor) -> None:
    await _create_group(client, admin, "Sales")
    response = await client.post(GROUPS, json={"name": "SALES"}, headers=admin.headers)
    error = await expect_error(response, 409, "DB_004")
    assert error["field"] == "name"

    other = await _create_group(client, admin, "Retention")
    url = f"{GROUPS}/{other['id']}"
    response = await client.put(url, json={"name": "sales"}, headers=admin.headers)
    await expect_error(response, 409, "DB_004")
    # Renaming a group to itself (another case) is fine.
    response = await client.put(url, json={"name": "RETENTION"}, headers=admin.headers)
    assert response.status == 200
    assert sorted(await _names(client, admin)) == ["RETENTION", "Sales"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "ok", "description": "d" * 501}, "description"),
        ({"name": "ok", "colour": "red"}, "colour"),
    ],
)
async def test_group_body_is_validated(
    client: TestClient[Any, Any], admin: Actor, body: dict[str, Any], field: str
) -> None:
    response = await client.post(GROUPS, json=body, headers=admin.headers)
    error = await expect_error(response, 422, "DB_003")
    assert error["field"] == field
    assert error["detail"][0]["loc"] == ["body", field]


async def test_group_in_use_cannot_be_deleted(
    client: TestClient[Any, Any], admin: Actor, group: dict[str, Any]
) -> None:
    member = await client.post(
        "/api/admin/users",
        json=user_body("member", "operator", group_id=group["id"]),
        headers=admin.headers,
    )
    assert member.status == 201
    user = await member.json()
    url = f"{GROUPS}/{group['id']}"
    response = await client.delete(url, headers=admin.headers)
    error = await expect_error(response, 409, "DB_004")
    assert "referenced" in error["detail"]
    assert (await client.get(url, headers=admin.headers)).status == 200

    # Moving the user out (its operator row follows) frees the group.
    response = await client.put(
        f"/api/admin/users/{user['id']}", json={"group_id": None}, headers=admin.headers
    )
    assert response.status == 200
    assert (await client.delete(url, headers=admin.headers)).status == 200


async def test_group_of_deleted_users_only_can_be_deleted(
    client: TestClient[Any, Any], admin: Actor, group: dict[str, Any]
) -> None:
    response = await client.post(
        "/api/admin/users", json=user_body("former", group_id=group["id"]), headers=admin.headers
    )
    user = await response.json()
    response = await client.delete(f"/api/admin/users/{user['id']}", headers=admin.headers)
    assert response.status == 200
    response = await client.delete(f"{GROUPS}/{group['id']}", headers=admin.headers)
    assert response.status == 200, await response.text()


async def test_supervisor_sees_only_their_own_group(
    client: TestClient[Any, Any], admin: Actor, actors: dict[str, Actor], group: dict[str, Any]
) -> None:
    other = await _create_group(client, admin, "Other team")
    supervisor = actors["supervisor"]
    response = await client.get(GROUPS, headers=supervisor.headers)
    assert response.status == 200
    assert [g["id"] for g in await response.json()] == [group["id"]]

    response = await client.get(f"{GROUPS}/{group['id']}", headers=supervisor.headers)
    assert response.status == 200
    # Another group, or one that does not exist: the same 404.
    hidden = await client.get(f"{GROUPS}/{other['id']}", headers=supervisor.headers)
    missing = await client.get(f"{GROUPS}/{uuid.uuid4()}", headers=supervisor.headers)
    assert await expect_error(hidden, 404, "DB_002") == await expect_error(missing, 404, "DB_002")


async def test_supervisor_without_a_group_sees_none(
    client: TestClient[Any, Any], admin: Actor, group: dict[str, Any]
) -> None:
    response = await client.post(
        "/api/admin/users", json=user_body("loner", "supervisor"), headers=admin.headers
    )
    assert response.status == 201
    token = await login(client, "loner", PASSWORD)
    response = await client.get(GROUPS, headers=bearer(token))
    assert response.status == 200
    assert await response.json() == []
    response = await client.get(f"{GROUPS}/{group['id']}", headers=bearer(token))
    await expect_error(response, 404, "DB_002")


async def test_manager_and_admin_see_every_group(
    client: TestClient[Any, Any], admin: Actor, actors: dict[str, Actor], group: dict[str, Any]
) -> None:
    other = await _create_group(client, admin, "Other team")
    for role in ("admin", "manager"):
        assert await _names(client, actors[role]) == ["Other team", "Sales"]
        response = await client.get(f"{GROUPS}/{other['id']}", headers=actors[role].headers)
        assert response.status == 200
        assert (await response.json())["id"] == other["id"]


async def test_only_admin_changes_groups(
    client: TestClient[Any, Any], actors: dict[str, Actor], group: dict[str, Any]
) -> None:
    url = f"{GROUPS}/{group['id']}"
    for role in ("manager", "supervisor", "operator"):
        headers = actors[role].headers
        await expect_error(
            await client.post(GROUPS, json={"name": "X"}, headers=headers), 403, "AUTH_003"
        )
        await expect_error(
            await client.put(url, json={"name": "X"}, headers=headers), 403, "AUTH_003"
        )
        await expect_error(await client.delete(url, headers=headers), 403, "AUTH_003")
    await expect_error(
        await client.get(GROUPS, headers=actors["operator"].headers), 403, "AUTH_003"
    )
    assert await _names(client, actors["admin"]) == ["Sales"]

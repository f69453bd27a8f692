"""/api/vip-callers: the VIP list, and the priority it gives a caller's number."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd import keys
from tests.api.conftest import Actor, ClientFactory, login
from tests.api.helpers import expect_error, query_db


async def test_put_lists_and_matches_on_the_digits(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> None:
    manager = actors["manager"]
    response = await client.put(
        "/api/vip-callers/+79001234567",
        json={"priority": 10, "note": "Key account"},
        headers=manager.headers,
    )
    assert response.status == 200, await response.text()
    vip = await response.json()
    assert (vip["number"], vip["priority"], vip["note"]) == ("+79001234567", 10, "Key account")
    vips = client.app[keys.SERVICES].vip_callers
    # The caller id as trunks send it, in any punctuation; other numbers get nothing.
    assert vips.priority_of("+7 (900) 123-45-67") == 10
    assert vips.priority_of("79001234567") == 10
    assert vips.priority_of("79001234568") == 0
    # Changed in place (one row per number), audited.
    await client.put("/api/vip-callers/79001234567", json={"priority": 3}, headers=manager.headers)
    listed = await (
        await client.get("/api/vip-callers", headers=actors["supervisor"].headers)
    ).json()
    assert [(v["number"], v["priority"], v["note"]) for v in listed] == [("79001234567", 3, "")]
    assert vips.priority_of("+79001234567") == 3
    actions = query_db(client, "SELECT action FROM audit_log WHERE entity = 'vip_caller'")
    assert [row["action"] for row in actions] == ["put", "put"]


async def test_delete_and_unknown_numbers(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> None:
    admin = actors["admin"]
    await client.put("/api/vip-callers/5550001", json={"priority": 5}, headers=admin.headers)
    response = await client.delete("/api/vip-callers/5550001", headers=admin.headers)
    assert response.status == 200
    assert client.app[keys.SERVICES].vip_callers.priority_of("5550001") == 0
    await expect_error(
        await client.delete("/api/vip-callers/5550001", headers=admin.headers), 404, "DB_002"
    )


@pytest.mark.parametrize(
    ("number", "body", "field"),
    [
        ("not-a-number", {"priority": 5}, "number"),
        ("+", {"priority": 5}, "number"),
        ("1" * 33, {"priority": 5}, "number"),
        ("5550001", {"priority": 0}, "priority"),
        ("5550001", {"priority": 101}, "priority"),
        ("5550001", {"priority": 5, "note": "x" * 201}, "note"),
        ("5550001", {}, "priority"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: TestClient[Any, Any], actors: dict[str, Actor], number: str, body: Any, field: str
) -> None:
    response = await client.put(
        f"/api/vip-callers/{number}", json=body, headers=actors["admin"].headers
    )
    error = await expect_error(response, 422, "DB_003")
    assert error["field"] == field
    assert query_db(client, "SELECT COUNT(*) FROM vip_callers")[0][0] == 0


async def test_the_list_is_loaded_at_start(make_client: ClientFactory) -> None:
    client = await make_client()
    token = await login(client, "admin", "admin-pass")
    headers = {"Authorization": f"Bearer {token}"}
    await client.put("/api/vip-callers/5550002", json={"priority": 7}, headers=headers)
    await client.close()
    again = await make_client()  # the same state folder: a restarted daemon
    assert again.app[keys.SERVICES].vip_callers.priority_of("5550002") == 7

"""The role matrix: every declared endpoint x every role (and no token), under both prefixes.

The rows are in tests/api/route_rules.py (shared with test_authorization_matrix.py); the test
walks the endpoints the app actually registered, so an endpoint added without a row here fails.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd.api.endpoints import API_PREFIXES, ENDPOINTS
from tests.api.conftest import ADMIN_PASSWORD, PASSWORD, Actor, bearer, login
from tests.api.helpers import expect_error
from tests.api.route_rules import CALLERS, TABLE, VIP_NUMBER, Row


def test_every_declared_endpoint_has_a_row(client: TestClient[Any, Any]) -> None:
    declared = {(e.method, e.path) for e in client.app[ENDPOINTS]}
    assert declared - TABLE.keys() == set(), "endpoints without a row in the role matrix"
    assert TABLE.keys() - declared == set(), "rows for endpoints the app does not declare"


def _path(template: str, row: Row, ids: dict[str, str]) -> str:
    return template.format(**{name: ids[symbol] for name, symbol in row.params.items()})


async def _token_for(client: TestClient[Any, Any], actor: Actor, row: Row) -> str:
    if not row.fresh_token:
        return actor.token
    password = ADMIN_PASSWORD if actor.role == "admin" else PASSWORD
    return await login(client, actor.user["username"], password)


@pytest.mark.parametrize("prefix", API_PREFIXES)
@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c or "no-token")
async def test_role_matrix(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    group: dict[str, Any],
    caller: str | None,
    prefix: str,
) -> None:
    ids = {
        "manager": actors["manager"].user["id"],
        "operator": actors["operator"].user["id"],
        "group": group["id"],
        "missing": str(uuid.uuid4()),
        "number": VIP_NUMBER,
        "missing number": "+15559999",
    }
    checked = 0
    for endpoint in client.app[ENDPOINTS]:
        row = TABLE.get((endpoint.method, endpoint.path))
        if row is None:
            pytest.fail(f"{endpoint.method} {endpoint.path} has no row in the role matrix")
        headers = {}
        if caller is not None:
            headers = bearer(await _token_for(client, actors[caller], row))
        url = prefix + _path(endpoint.path, row, ids)
        response = await client.request(
            endpoint.method, url, json=row.body, headers=headers or None
        )
        where = f"{caller or 'no token'}: {endpoint.method} {url}"
        allowed = row.allowed is None or (caller is not None and caller in row.allowed)
        if allowed:
            status, code = row.answer(caller)
            assert response.status == status, (where, await response.text())
            if code is not None:
                assert (await response.json())["code"] == code, where
        elif caller is None:
            body = await expect_error(response, 401, "AUTH_001")
            assert response.headers["WWW-Authenticate"] == "Bearer", where
            assert body["type"] == "authentication_error", where
        else:
            body = await expect_error(response, 403, "AUTH_003")
            assert body["type"] == "authorization_error", where
        checked += 1
    assert checked == len(TABLE)


async def test_forbidden_call_changes_nothing(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> None:
    """A refused role never reaches the handler: the target user is untouched."""
    target = actors["operator"].user
    for role in ("manager", "supervisor", "operator"):
        response = await client.put(
            f"/api/admin/users/{target['id']}",
            json={"name": "Hijacked"},
            headers=actors[role].headers,
        )
        await expect_error(response, 403, "AUTH_003")
        response = await client.delete(
            f"/api/admin/users/{target['id']}", headers=actors[role].headers
        )
        await expect_error(response, 403, "AUTH_003")
    me = await (await client.get("/api/auth/me", headers=actors["operator"].headers)).json()
    assert me["name"] == target["name"]

"""The role matrix: every declared endpoint x every role (and no token), under both prefixes.

The table below is the specification, written from the API contract; the test walks the
endpoints the app actually registered, so an endpoint added without a row here fails.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd.api.endpoints import API_PREFIXES, ENDPOINTS
from tests.api.conftest import ADMIN_PASSWORD, PASSWORD, Actor, bearer, login
from tests.api.helpers import expect_error
from tests.conftest import free_port

ADMIN = frozenset({"admin"})
READERS = frozenset({"admin", "manager", "supervisor"})
EVERYONE = frozenset({"admin", "manager", "supervisor", "operator"})
CALLERS = ["admin", "manager", "supervisor", "operator", None]


@dataclass(frozen=True)
class Row:
    """Who may call an endpoint, and how an allowed call is answered by its handler."""

    allowed: frozenset[str] | None  # None: public, no token needed
    status: int  # the handler's answer to the request below
    code: str | None = None  # the handler's error code, when `status` is an error
    body: Any = None
    # Path parameters by symbolic name: "manager"/"operator" (their user id), "group", "missing".
    params: dict[str, str] = field(default_factory=dict)
    fresh_token: bool = False  # the call spends the token (logout): use a new one


TABLE: dict[tuple[str, str], Row] = {
    ("POST", "/auth/login"): Row(None, 200, body={"username": "admin", "password": ADMIN_PASSWORD}),
    ("GET", "/auth/me"): Row(EVERYONE, 200),
    ("POST", "/auth/logout"): Row(EVERYONE, 200, fresh_token=True),
    ("GET", "/admin/users"): Row(ADMIN, 200),
    ("POST", "/admin/users"): Row(
        ADMIN,
        201,
        body={
            "username": "matrix",
            "email": "matrix@example.com",
            "name": "Matrix",
            "password": "secret-pw",
            "role": "manager",
        },
    ),
    ("PUT", "/admin/users/{user_id}"): Row(
        ADMIN, 200, body={"name": "Renamed"}, params={"user_id": "manager"}
    ),
    ("DELETE", "/admin/users/{user_id}"): Row(
        ADMIN, 404, "USER_004", params={"user_id": "missing"}
    ),
    ("GET", "/admin/users/{user_id}/operator"): Row(ADMIN, 200, params={"user_id": "operator"}),
    ("POST", "/admin/users/{user_id}/unlock"): Row(ADMIN, 200, params={"user_id": "manager"}),
    ("GET", "/admin/groups"): Row(READERS, 200),
    ("GET", "/admin/groups/{group_id}"): Row(READERS, 200, params={"group_id": "group"}),
    ("POST", "/admin/groups"): Row(ADMIN, 201, body={"name": "Matrix group"}),
    ("PUT", "/admin/groups/{group_id}"): Row(
        ADMIN, 200, body={"description": "changed"}, params={"group_id": "group"}
    ),
    ("DELETE", "/admin/groups/{group_id}"): Row(
        ADMIN, 404, "DB_002", params={"group_id": "missing"}
    ),
    ("GET", "/admin/settings"): Row(ADMIN, 200),
    ("PUT", "/admin/settings"): Row(ADMIN, 200, body={"call_recording": True}),
    ("POST", "/admin/settings/asterisk/test"): Row(
        ADMIN,
        200,
        # A closed local port: the probe fails at once, and still answers 200.
        body={"host": "127.0.0.1", "port": free_port(), "username": "probe", "timeout": 1},
    ),
    ("GET", "/admin/system/info"): Row(ADMIN, 200),
    # Queues, operators, calls: per-record scoping (own group, own calls) is in their own tests;
    # "missing" ids answer the same for every allowed role.
    ("GET", "/queues/"): Row(READERS, 200),
    ("POST", "/queues/"): Row(ADMIN, 201, body={"name": "Matrix queue", "asterisk_name": "matrix"}),
    ("GET", "/queues/{queue_id}"): Row(READERS, 404, "DB_002", params={"queue_id": "missing"}),
    ("PUT", "/queues/{queue_id}"): Row(
        ADMIN, 404, "DB_002", body={"priority": 2}, params={"queue_id": "missing"}
    ),
    ("DELETE", "/queues/{queue_id}"): Row(ADMIN, 404, "DB_002", params={"queue_id": "missing"}),
    ("GET", "/queues/{queue_id}/members"): Row(
        READERS, 404, "DB_002", params={"queue_id": "missing"}
    ),
    ("GET", "/operators/"): Row(READERS, 200),
    ("PUT", "/operators/{operator_id}/status"): Row(
        EVERYONE, 404, "DB_002", body={"status": "online"}, params={"operator_id": "missing"}
    ),
    ("GET", "/operators/{operator_id}/stats"): Row(
        EVERYONE, 404, "DB_002", params={"operator_id": "missing"}
    ),
    ("GET", "/calls/"): Row(EVERYONE, 200),
    ("GET", "/calls/export"): Row(EVERYONE, 200),
    ("POST", "/calls/"): Row(
        ADMIN, 201, body={"channel_id": "matrix-1", "caller_number": "+79001234567"}
    ),
    ("GET", "/calls/{call_id}"): Row(EVERYONE, 404, "DB_002", params={"call_id": "missing"}),
    ("GET", "/calls/{call_id}/recording"): Row(
        EVERYONE, 404, "DB_002", params={"call_id": "missing"}
    ),
    # ARI is on a closed port in these tests: allowed calls reach the handler and get AST_004.
    ("GET", "/asterisk/extensions"): Row(frozenset({"admin", "manager"}), 503, "AST_004"),
    ("GET", "/asterisk/realtime-data"): Row(READERS, 200),
    # No AMI secret in these tests: the AMI link is disabled.
    ("GET", "/asterisk/queues"): Row(frozenset({"admin", "manager"}), 503, "AST_004"),
    ("POST", "/asterisk/channels/{channel_id}/answer"): Row(
        frozenset({"admin", "operator"}), 503, "AST_004", params={"channel_id": "missing"}
    ),
    ("POST", "/asterisk/channels/{channel_id}/hangup"): Row(
        frozenset({"admin", "operator"}), 503, "AST_004", params={"channel_id": "missing"}
    ),
    ("POST", "/asterisk/originate"): Row(
        frozenset({"admin", "operator"}),
        503,
        "AST_004",
        body={"endpoint": "PJSIP/1001", "extension": "100"},
    ),
    ("PUT", "/calls/{call_id}"): Row(
        frozenset({"admin", "operator"}),
        404,
        "DB_002",
        body={"notes": "n"},
        params={"call_id": "missing"},
    ),
    # Statistics: the supervisor's own group is applied for them (see test_dashboard.py).
    ("GET", "/dashboard/stats"): Row(READERS, 200),
    ("GET", "/dashboard/realtime"): Row(READERS, 200),
    ("GET", "/dashboard/call-analytics"): Row(READERS, 200),
    ("GET", "/dashboard/operator-activity"): Row(READERS, 200),
    ("GET", "/calls/stats"): Row(READERS, 200),
    ("GET", "/queues/{queue_id}/stats"): Row(
        READERS, 404, "DB_002", params={"queue_id": "missing"}
    ),
    ("GET", "/queues/{queue_id}/forecast"): Row(
        READERS, 404, "DB_002", params={"queue_id": "missing"}
    ),
}


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
            assert response.status == row.status, (where, await response.text())
            if row.code is not None:
                assert (await response.json())["code"] == row.code, where
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

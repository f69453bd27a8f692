"""The real app factory over a temporary SQLite file, and logged-in users of every role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd.app import create_app
from tests.conftest import FakeClock, make_settings

ADMIN_PASSWORD = "admin-pass"
PASSWORD = "secret-pw"

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def make_client(aiohttp_client: Any, tmp_path: Path, clock: FakeClock) -> ClientFactory:
    """Build a client for the real app; keyword arguments override settings sections."""

    async def build(
        monotonic: Callable[[], float] | None = None, **overrides: Any
    ) -> TestClient[Any, Any]:
        """`monotonic`: the clock rate limits refill by (the real one when not given)."""
        settings = make_settings(tmp_path / "state", **overrides)
        app = create_app(settings, clock=clock, **({"monotonic": monotonic} if monotonic else {}))
        client: TestClient[Any, Any] = await aiohttp_client(app)
        return client

    return build


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient[Any, Any]:
    return await make_client()


async def login(client: TestClient[Any, Any], username: str, password: str) -> str:
    response = await client.post(
        "/api/auth/login", json={"username": username, "password": password}
    )
    assert response.status == 200, await response.text()
    token: str = (await response.json())["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Actor:
    role: str
    token: str
    user: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


@pytest.fixture
async def admin(client: TestClient[Any, Any]) -> Actor:
    token = await login(client, "admin", ADMIN_PASSWORD)
    me = await (await client.get("/api/auth/me", headers=bearer(token))).json()
    return Actor("admin", token, me)


@pytest.fixture
async def group(client: TestClient[Any, Any], admin: Actor) -> dict[str, Any]:
    response = await client.post(
        "/api/admin/groups",
        json={"name": "Sales", "description": "Sales team"},
        headers=admin.headers,
    )
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


@pytest.fixture
async def other_group(client: TestClient[Any, Any], admin: Actor) -> dict[str, Any]:
    response = await client.post(
        "/api/admin/groups", json={"name": "Support"}, headers=admin.headers
    )
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


@pytest.fixture
async def actors(
    client: TestClient[Any, Any], admin: Actor, group: dict[str, Any]
) -> dict[str, Actor]:
    """One logged-in user per role; the supervisor and the operator are in `group`."""
    found = {"admin": admin}
    specs = {
        "manager": {},
        "supervisor": {"group_id": group["id"]},
        "operator": {"group_id": group["id"], "extension": "1001"},
    }
    for role, extra in specs.items():
        body = {
            "username": f"{role}1",
            "email": f"{role}1@example.com",
            "name": f"{role.title()} One",
            "password": PASSWORD,
            "role": role,
            **extra,
        }
        response = await client.post("/api/admin/users", json=body, headers=admin.headers)
        assert response.status == 201, await response.text()
        user = await response.json()
        found[role] = Actor(role, await login(client, body["username"], PASSWORD), user)
    return found

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.api.conftest import Actor


async def test_every_role_can_read_itself(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> None:
    for role, actor in actors.items():
        response = await client.get("/api/auth/me", headers=actor.headers)
        assert response.status == 200
        assert (await response.json())["role"] == role

"""Saved settings and user changes reach the routing engine at once, without a restart."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from callcenterd import keys
from callcenterd.routing import RoutingEngine
from tests.api.conftest import PASSWORD, Actor


def engine_of(client: TestClient[Any, Any]) -> RoutingEngine:
    return client.server.app[keys.SERVICES].dispatcher.engine


async def test_saved_settings_drive_the_engine_and_recording(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    body = {
        "auto_answer_delay": 1.5,
        "max_call_duration": 600,
        "queue_timeout": 42,
        "call_recording": True,
    }
    response = await client.put("/api/admin/settings", json=body, headers=admin.headers)
    assert response.status == 200, await response.text()
    settings = engine_of(client).settings
    assert (settings.auto_answer_delay, settings.max_call_duration, settings.queue_timeout) == (
        1.5,
        600,
        42,
    )
    assert client.server.app[keys.SERVICES].dispatcher.record_calls is True


async def test_operator_user_changes_reach_the_engine(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    created = await client.post(
        "/api/admin/users",
        json={
            "username": "skilled",
            "email": "skilled@example.com",
            "name": "Skilled One",
            "password": PASSWORD,
            "role": "operator",
            "extension": "1010",
            "skills": ["french"],
        },
        headers=admin.headers,
    )
    assert created.status == 201, await created.text()
    user = await created.json()
    operator = await (
        await client.get(f"/api/admin/users/{user['id']}/operator", headers=admin.headers)
    ).json()
    engine = engine_of(client)
    assert engine.operators[operator["id"]].profile.skills == frozenset({"french"})

    await client.put(
        f"/api/admin/users/{user['id']}",
        json={"skills": ["french", "german"], "extension": "1011"},
        headers=admin.headers,
    )
    profile = engine.operators[operator["id"]].profile
    assert profile.skills == frozenset({"french", "german"})
    assert profile.extension == "1011"

    await client.put(
        f"/api/admin/users/{user['id']}", json={"is_active": False}, headers=admin.headers
    )
    assert operator["id"] not in engine.operators  # a deactivated operator never rings

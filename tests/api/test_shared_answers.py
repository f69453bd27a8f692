"""Shared answers: identical dashboard and list reads of one scope share one computation.

The window is measured on the app's monotonic clock, which these tests hold still (and move
by hand), so "within the window" and "after it" are exact.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd import keys
from callcenterd.api.endpoints import SharedAnswers, viewer_scope
from tests.api.conftest import ADMIN_PASSWORD, PASSWORD, Actor, ClientFactory, bearer, login
from tests.api.helpers import expect_error, user_body
from tests.api.routing_helpers import insert_call, make_operator
from tests.conftest import FakeClock

WINDOW = 5.0


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
async def shared(make_client: ClientFactory, ticks: Ticks) -> TestClient[Any, Any]:
    return await make_client(monotonic=ticks, http={"shared_answer_seconds": WINDOW})


async def _actor(client: TestClient[Any, Any], admin: Actor, name: str, **extra: Any) -> Actor:
    response = await client.post(
        "/api/admin/users", json=user_body(name, **extra), headers=admin.headers
    )
    assert response.status == 201, await response.text()
    user = await response.json()
    return Actor(user["role"], await login(client, name, PASSWORD), user)


async def _admin(client: TestClient[Any, Any]) -> Actor:
    token = await login(client, "admin", ADMIN_PASSWORD)
    return Actor("admin", token, {})


async def _get(client: TestClient[Any, Any], actor: Actor, path: str) -> Any:
    response = await client.get(path, headers=actor.headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def _group(client: TestClient[Any, Any], admin: Actor, name: str) -> str:
    response = await client.post("/api/admin/groups", json={"name": name}, headers=admin.headers)
    assert response.status == 201, await response.text()
    group_id: str = (await response.json())["id"]
    return group_id


async def test_one_scope_shares_an_answer_within_the_window(
    shared: TestClient[Any, Any], ticks: Ticks, clock: FakeClock
) -> None:
    admin = await _admin(shared)
    first = await _actor(shared, admin, "manager_a")
    second = await _actor(shared, admin, "manager_b")
    assert (await _get(shared, first, "/api/calls/"))["total"] == 0
    insert_call(shared, clock())  # written by routing, not through the API
    # Another manager, the same question, within the window: the same answer.
    assert (await _get(shared, second, "/api/calls/"))["total"] == 0
    ticks.now += WINDOW
    assert (await _get(shared, second, "/api/calls/"))["total"] == 1


async def test_no_answer_crosses_a_scope(shared: TestClient[Any, Any], clock: FakeClock) -> None:
    admin = await _admin(shared)
    sales, support = await _group(shared, admin, "Sales"), await _group(shared, admin, "Support")
    op_a = await make_operator(shared, admin, "op_a", "1001", sales)
    op_b = await make_operator(shared, admin, "op_b", "1002", sales)
    await make_operator(shared, admin, "op_c", "1003", support)
    mine = {
        name: insert_call(shared, clock(), operator_id=operator["id"])
        for name, operator in (("op_a", op_a), ("op_b", op_b))
    }
    operators = {name: Actor("operator", await login(shared, name, PASSWORD), {}) for name in mine}
    readers = {
        name: await _actor(shared, admin, name, **extra)
        for name, extra in (
            ("sup_sales", {"role": "supervisor", "group_id": sales}),
            ("sup_support", {"role": "supervisor", "group_id": support}),
            ("boss", {"role": "manager"}),
        )
    }
    # Everyone created first (a user created is a write: it forgets the answers), then, within
    # one window: two operators of one group each get their own calls...
    for name, actor in operators.items():
        items = (await _get(shared, actor, "/api/calls/"))["items"]
        assert [item["id"] for item in items] == [mine[name]], name
    # ... and supervisors of two groups and a manager each their own operators.
    seen = {
        name: sorted(op["extension"] for op in await _get(shared, actor, "/api/operators/"))
        for name, actor in readers.items()
    }
    assert seen == {
        "sup_sales": ["1001", "1002"],
        "sup_support": ["1003"],
        "boss": ["1001", "1002", "1003"],
    }


async def test_a_write_through_the_api_is_read_back_at_once(shared: TestClient[Any, Any]) -> None:
    admin = await _admin(shared)
    assert await _get(shared, admin, "/api/queues/") == []
    response = await shared.post(
        "/api/queues/", json={"name": "sales", "asterisk_name": "sales"}, headers=admin.headers
    )
    assert response.status == 201, await response.text()
    assert [queue["name"] for queue in await _get(shared, admin, "/api/queues/")] == ["sales"]


async def test_every_request_is_still_authenticated(shared: TestClient[Any, Any]) -> None:
    admin = await _admin(shared)
    manager = await _actor(shared, admin, "leaving")
    await _get(shared, manager, "/api/dashboard/realtime")
    assert (await shared.post("/api/auth/logout", headers=manager.headers)).status == 200
    response = await shared.get("/api/dashboard/realtime", headers=bearer(manager.token))
    await expect_error(response, 401, "AUTH_002")
    # Demoted within the window: the same token now gets the new role's answer (a refusal).
    other = await _actor(shared, admin, "demoted")
    await _get(shared, other, "/api/dashboard/realtime")
    update = {"role": "operator", "extension": "2301"}
    response = await shared.put(
        f"/api/admin/users/{other.user['id']}", json=update, headers=admin.headers
    )
    assert response.status == 200, await response.text()
    response = await shared.get("/api/dashboard/realtime", headers=other.headers)
    await expect_error(response, 403, "AUTH_003")


async def test_zero_seconds_shares_nothing(
    make_client: ClientFactory, ticks: Ticks, clock: FakeClock
) -> None:
    client = await make_client(monotonic=ticks, http={"shared_answer_seconds": 0})
    admin = await _admin(client)
    assert (await _get(client, admin, "/api/calls/"))["total"] == 0
    insert_call(client, clock())
    assert (await _get(client, admin, "/api/calls/"))["total"] == 1


async def test_the_scope_is_role_and_group_and_an_operators_own_id(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> None:
    auth = client.app[keys.SERVICES].auth
    principals = {
        role: await auth.authenticate(f"Bearer {actor.token}") for role, actor in actors.items()
    }
    scopes = {role: viewer_scope(principal) for role, principal in principals.items()}
    assert len(set(scopes.values())) == 4
    operator = principals["operator"]
    assert scopes["operator"] == (operator.role, operator.group_id, operator.id)
    assert scopes["manager"] == (principals["manager"].role, None, None)


async def test_an_error_is_not_kept(ticks: Ticks) -> None:
    answers = SharedAnswers(WINDOW, ticks)
    calls = 0

    async def failing() -> Any:
        nonlocal calls
        calls += 1
        raise RuntimeError("database gone")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            await answers.answer("key", failing)
    assert calls == 2

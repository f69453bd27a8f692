"""The authentication cache: users and token checks kept in memory, never stale.

Each test first makes a request with the token (so the user and the token's claims are in
memory), then changes what the cache holds, then checks the very next request sees the change.
A cache that was not told would answer the old state and fail the test.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from callcenterd import keys
from callcenterd.cli import _user_service
from callcenterd.domain.users import Role, User
from callcenterd.errors import UserInactive
from callcenterd.security import Principal, TokenService
from callcenterd.services.auth import AuthService, Lockout
from callcenterd.store.db import Database
from tests.api.conftest import PASSWORD, Actor, ClientFactory, bearer, login
from tests.api.helpers import expect_error, user_body
from tests.conftest import FakeClock


async def _create(client: TestClient[Any, Any], admin: Actor, body: dict[str, Any]) -> Any:
    response = await client.post("/api/admin/users", json=body, headers=admin.headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def _principal(client: TestClient[Any, Any], token: str) -> Principal:
    """What the daemon makes of the token right now (the user every handler is given)."""
    auth = client.app[keys.SERVICES].auth
    return await auth.authenticate(f"Bearer {token}")


async def _warm(client: TestClient[Any, Any], token: str) -> dict[str, Any]:
    response = await client.get("/api/auth/me", headers=bearer(token))
    assert response.status == 200, await response.text()
    me: dict[str, Any] = await response.json()
    return me


async def _update(
    client: TestClient[Any, Any], admin: Actor, user_id: str, body: dict[str, Any]
) -> None:
    response = await client.put(f"/api/admin/users/{user_id}", json=body, headers=admin.headers)
    assert response.status == 200, await response.text()


async def test_a_role_change_is_seen_on_the_next_request(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    user = await _create(client, admin, user_body("climber", role="manager"))
    token = await login(client, "climber", PASSWORD)
    assert (await _warm(client, token))["role"] == "manager"
    # A manager reads the dashboards; the same token, its user made an operator, may not.
    stats = "/api/dashboard/stats"
    assert (await client.get(stats, headers=bearer(token))).status == 200
    await _update(client, admin, user["id"], {"role": "operator", "extension": "2201"})
    assert (await _warm(client, token))["role"] == "operator"
    await expect_error(await client.get(stats, headers=bearer(token)), 403, "AUTH_003")


async def test_a_group_move_is_seen_on_the_next_request(
    client: TestClient[Any, Any], admin: Actor, group: dict[str, Any], other_group: dict[str, Any]
) -> None:
    user = await _create(client, admin, user_body("mover", "supervisor", group_id=group["id"]))
    token = await login(client, "mover", PASSWORD)
    assert (await _warm(client, token))["group_id"] == group["id"]
    await _update(client, admin, user["id"], {"group_id": other_group["id"]})
    assert (await _warm(client, token))["group_id"] == other_group["id"]
    assert (await _principal(client, token)).group_id == other_group["id"]


async def test_an_extension_change_is_seen_on_the_next_request(
    client: TestClient[Any, Any], admin: Actor, group: dict[str, Any]
) -> None:
    user = await _create(
        client, admin, user_body("dialer", "operator", group_id=group["id"], extension="2101")
    )
    token = await login(client, "dialer", PASSWORD)
    await _warm(client, token)
    assert (await _principal(client, token)).user.extension == "2101"
    await _update(client, admin, user["id"], {"extension": "2102"})
    assert (await _principal(client, token)).user.extension == "2102"
    # Demoted: the operator row (and its phone) goes; the user's phone is their own, none.
    await _update(client, admin, user["id"], {"role": "manager"})
    principal = await _principal(client, token)
    assert (principal.role, principal.user.extension) == (Role.MANAGER, None)


async def test_an_operator_row_coming_and_going_is_seen_on_the_next_request(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    """/me answers the operator from the cached user (no read of its own): it must follow."""
    user = await _create(client, admin, user_body("shifter", role="manager"))
    token = await login(client, "shifter", PASSWORD)
    assert (await _warm(client, token))["operator"] is None
    await _update(client, admin, user["id"], {"role": "operator", "extension": "2301"})
    operator = (await _warm(client, token))["operator"]
    assert (operator["user_id"], operator["extension"]) == (user["id"], "2301")
    await _update(client, admin, user["id"], {"role": "supervisor"})
    assert (await _warm(client, token))["operator"] is None
    # Revived (the row is kept for the call history): the same operator again.
    await _update(client, admin, user["id"], {"role": "operator", "extension": "2302"})
    assert (await _warm(client, token))["operator"]["id"] == operator["id"]


async def test_another_process_removing_an_operator_row_is_picked_up(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    user = await _create(client, admin, user_body("faded", "operator", extension="2311"))
    token = await login(client, "faded", PASSWORD)
    assert (await _warm(client, token))["operator"] is not None
    other = Database(client.app[keys.SETTINGS].database_path)
    await other.open()
    try:
        async with other.transaction() as conn:
            await conn.execute(
                "UPDATE operators SET deleted_at = '2026-01-01T00:00:00Z' WHERE user_id = ?",
                (user["id"],),
            )
    finally:
        await other.close()
    assert (await _warm(client, token))["operator"] is None


async def test_a_deleted_user_is_refused_on_the_next_request(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    user = await _create(client, admin, user_body("goner", "operator", extension="2321"))
    token = await login(client, "goner", PASSWORD)
    await _warm(client, token)
    response = await client.delete(f"/api/admin/users/{user['id']}", headers=admin.headers)
    assert response.status == 200, await response.text()
    response = await client.get("/api/auth/me", headers=bearer(token))
    assert response.status == 401, await response.text()


async def test_a_password_change_refuses_the_next_request_with_an_older_token(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    user = await _create(client, admin, user_body("rotor"))
    token = await login(client, "rotor", PASSWORD)
    await _warm(client, token)
    await _update(client, admin, user["id"], {"password": "another-pw"})
    await expect_error(await client.get("/api/auth/me", headers=bearer(token)), 401, "AUTH_002")
    assert (await _warm(client, await login(client, "rotor", "another-pw")))["id"] == user["id"]


async def test_deactivation_refuses_the_next_request(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    user = await _create(client, admin, user_body("sleeper"))
    token = await login(client, "sleeper", PASSWORD)
    await _warm(client, token)
    await _update(client, admin, user["id"], {"is_active": False})
    response = await client.get("/api/auth/me", headers=bearer(token))
    assert response.status in (401, 403), await response.text()


async def test_logout_refuses_the_next_request_with_that_token(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    await _create(client, admin, user_body("leaver"))
    token = await login(client, "leaver", PASSWORD)
    await _warm(client, token)
    assert (await client.post("/api/auth/logout", headers=bearer(token))).status == 200
    await expect_error(await client.get("/api/auth/me", headers=bearer(token)), 401, "AUTH_002")


async def test_a_lockout_and_an_unlock_are_seen_on_the_next_request(
    make_client: ClientFactory,
) -> None:
    client = await make_client(auth={"lockout_attempts": 3})
    admin_token = await login(client, "admin", "admin-pass")
    admin = Actor("admin", admin_token, await _warm(client, admin_token))
    user = await _create(client, admin, user_body("forgetful"))
    token = await login(client, "forgetful", PASSWORD)
    await _warm(client, token)
    assert (await _principal(client, token)).user.locked_until is None
    for _ in range(3):
        response = await client.post(
            "/api/auth/login", json={"username": "forgetful", "password": "wrong-one"}
        )
        assert response.status == 401
    # Tokens already issued keep working (a lockout refuses logins); the user shows the lock.
    assert (await _principal(client, token)).user.locked_until is not None
    response = await client.post(f"/api/admin/users/{user['id']}/unlock", headers=admin.headers)
    assert response.status == 200, await response.text()
    assert (await _principal(client, token)).user.locked_until is None


async def test_an_expired_token_is_refused_although_its_check_was_kept(
    client: TestClient[Any, Any], admin: Actor, clock: FakeClock
) -> None:
    await _warm(client, admin.token)
    clock.advance(days=2)
    await expect_error(
        await client.get("/api/auth/me", headers=bearer(admin.token)), 401, "AUTH_002"
    )


async def test_another_process_changing_a_user_is_picked_up(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    """`callcenterd user set-password` runs in its own process, on the same store."""
    await _create(client, admin, user_body("remote"))
    token = await login(client, "remote", PASSWORD)
    await _warm(client, token)
    settings = client.app[keys.SETTINGS]
    other = Database(settings.database_path)
    await other.open()
    try:
        await _user_service(other, settings).set_password("remote", "brand-new-pw")
    finally:
        await other.close()
    await expect_error(await client.get("/api/auth/me", headers=bearer(token)), 401, "AUTH_002")


async def test_another_process_revoking_a_token_is_picked_up(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    """A second daemon on the same store logs a token out (issue 16's setting)."""
    await _warm(client, admin.token)
    principal = await _principal(client, admin.token)
    settings = client.app[keys.SETTINGS]
    other = Database(settings.database_path)
    await other.open()
    try:
        async with other.transaction() as conn:
            await conn.execute(
                "INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES (?, ?, ?)",
                (principal.claims.jti, principal.id, principal.claims.expires_at.isoformat()),
            )
    finally:
        await other.close()
    await expect_error(
        await client.get("/api/auth/me", headers=bearer(admin.token)), 401, "AUTH_002"
    )


class _SlowUsers:
    """A user repository whose reads wait for the test to let them finish."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.reads = 0
        self.release = asyncio.Event()

    async def get(self, user_id: str) -> User | None:
        self.reads += 1
        answer = self.user
        await self.release.wait()
        return answer


class _NoRevocations:
    async def live_jtis(self, now: Any) -> set[str]:
        return set()


class _Epoch:
    value: int | None = 0

    def read(self) -> int | None:
        return self.value

    def close(self) -> None:
        pass


def _service(users: _SlowUsers, epoch: _Epoch, clock: FakeClock) -> tuple[AuthService, str]:
    tokens = TokenService(b"k" * 32, timedelta(minutes=5), clock)
    auth = AuthService(
        users,  # type: ignore[arg-type]
        _NoRevocations(),  # type: ignore[arg-type]
        tokens,
        None,  # type: ignore[arg-type]
        clock,
        None,  # type: ignore[arg-type]
        Lockout(0, timedelta(0)),
        epoch,  # type: ignore[arg-type]
    )
    user = users.user
    return auth, f"Bearer {tokens.issue(user.id, user.token_generation).token}"


async def test_a_read_overtaken_by_a_change_is_not_kept(
    client: TestClient[Any, Any], admin: Actor, clock: FakeClock
) -> None:
    """A row read before a change, answered after it, must not become the cached user."""
    stored = (await _principal(client, admin.token)).user
    users, epoch = _SlowUsers(stored), _Epoch()
    auth, header = _service(users, epoch, clock)
    await auth.start()
    first = asyncio.create_task(auth.authenticate(header))
    await asyncio.sleep(0)  # the read has begun with the old row
    users.user = replace(stored, role=Role.OPERATOR)  # the change, committed meanwhile
    epoch.value = 1
    users.release.set()
    assert (await first).role is stored.role  # that request began before the change
    assert (await auth.authenticate(header)).role is Role.OPERATOR
    assert (await auth.authenticate(header)).role is Role.OPERATOR
    assert users.reads == 2  # the second answer was kept, the first was not


async def test_an_unknown_epoch_trusts_nothing_from_memory(
    client: TestClient[Any, Any], admin: Actor, clock: FakeClock
) -> None:
    stored = (await _principal(client, admin.token)).user
    users, epoch = _SlowUsers(stored), _Epoch()
    users.release.set()
    auth, header = _service(users, epoch, clock)
    await auth.start()
    await auth.authenticate(header)
    await auth.authenticate(header)
    assert users.reads == 1  # kept
    epoch.value = None  # the database is busy: whether anything changed is not known
    users.user = replace(stored, is_active=False)
    await _refused(auth, header)
    await _refused(auth, header)
    assert users.reads == 3


async def _refused(auth: AuthService, header: str) -> None:
    try:
        await auth.authenticate(header)
    except UserInactive:
        return
    raise AssertionError("an inactive user was let in")

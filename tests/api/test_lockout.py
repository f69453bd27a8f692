"""Account lockout: failed logins in a row lock a username, in the database, for a while."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.api.conftest import ADMIN_PASSWORD, PASSWORD, ClientFactory, bearer, login
from tests.api.helpers import expect_error, query_db, user_body
from tests.conftest import FakeClock

LOGIN = "/api/auth/login"
ATTEMPTS = 3
LOCKOUT = {"auth": {"bcrypt_rounds": 4, "lockout_attempts": ATTEMPTS, "lockout_minutes": 15}}


async def _client(make_client: ClientFactory) -> TestClient[Any, Any]:
    return await make_client(**LOCKOUT)


async def _admin_headers(client: TestClient[Any, Any]) -> dict[str, str]:
    return bearer(await login(client, "admin", ADMIN_PASSWORD))


async def _create_user(client: TestClient[Any, Any], username: str) -> dict[str, Any]:
    response = await client.post(
        "/api/admin/users", json=user_body(username), headers=await _admin_headers(client)
    )
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    assert created["locked_until"] is None
    return created


async def _attempt(client: TestClient[Any, Any], username: str, password: str) -> Any:
    return await client.post(LOGIN, json={"username": username, "password": password})


async def _fail(client: TestClient[Any, Any], username: str, times: int) -> None:
    for _ in range(times):
        await expect_error(await _attempt(client, username, "wrong-pw"), 401, "AUTH_001")


async def _admin_view(client: TestClient[Any, Any], user_id: str) -> dict[str, Any]:
    users = await (
        await client.get("/api/admin/users", headers=await _admin_headers(client))
    ).json()
    found: dict[str, Any] = next(user for user in users if user["id"] == user_id)
    return found


async def test_failures_in_a_row_lock_the_account_even_for_the_right_password(
    make_client: ClientFactory, clock: FakeClock
) -> None:
    client = await _client(make_client)
    user = await _create_user(client, "victim")
    await _fail(client, "victim", ATTEMPTS)
    locked = await expect_error(await _attempt(client, "victim", PASSWORD), 403, "AUTH_005")
    assert locked["type"] == "authorization_error"
    assert "locked" in locked["detail"]
    # Any spelling of the name is the same account.
    await expect_error(await _attempt(client, "VICTIM", PASSWORD), 403, "AUTH_005")
    seen = await _admin_view(client, user["id"])
    assert seen["locked_until"] is not None
    clock.advance(minutes=14, seconds=59)
    await expect_error(await _attempt(client, "victim", PASSWORD), 403, "AUTH_005")
    clock.advance(seconds=2)
    assert (await _attempt(client, "victim", PASSWORD)).status == 200
    assert (await _admin_view(client, user["id"]))["locked_until"] is None


async def test_a_successful_login_resets_the_count(make_client: ClientFactory) -> None:
    client = await _client(make_client)
    await _create_user(client, "forgetful")
    for _ in range(3):
        await _fail(client, "forgetful", ATTEMPTS - 1)
        assert (await _attempt(client, "forgetful", PASSWORD)).status == 200
    rows = query_db(client, "SELECT * FROM login_failures WHERE username_key = 'forgetful'")
    assert rows == []


async def test_failures_further_apart_than_the_lockout_time_do_not_add_up(
    make_client: ClientFactory, clock: FakeClock
) -> None:
    client = await _client(make_client)
    await _create_user(client, "slow")
    await _fail(client, "slow", ATTEMPTS - 1)
    clock.advance(minutes=16)
    await _fail(client, "slow", ATTEMPTS - 1)
    assert (await _attempt(client, "slow", PASSWORD)).status == 200


async def test_an_unknown_username_is_answered_exactly_like_a_known_one(
    make_client: ClientFactory,
) -> None:
    client = await _client(make_client)
    await _create_user(client, "known")
    answers: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for name in ("known", "nobody"):
        answers[name] = []
        for _ in range(ATTEMPTS + 2):
            response = await _attempt(client, name, "wrong-pw")
            answers[name].append((response.status, await response.json()))
    assert answers["known"] == answers["nobody"]
    assert [status for status, _ in answers["nobody"]] == [401] * ATTEMPTS + [403, 403]
    assert answers["nobody"][-1][1]["code"] == "AUTH_005"


async def test_an_admin_unlocks_a_locked_user(make_client: ClientFactory) -> None:
    client = await _client(make_client)
    user = await _create_user(client, "unlucky")
    await _fail(client, "unlucky", ATTEMPTS)
    assert (await _admin_view(client, user["id"]))["locked_until"] is not None
    response = await client.post(
        f"/api/admin/users/{user['id']}/unlock", headers=await _admin_headers(client)
    )
    assert response.status == 200, await response.text()
    unlocked = await response.json()
    assert unlocked["id"] == user["id"] and unlocked["locked_until"] is None
    assert (await _attempt(client, "unlucky", PASSWORD)).status == 200
    audit = query_db(
        client,
        "SELECT action FROM audit_log WHERE entity_id = ? AND action = 'unlock'",
        (user["id"],),
    )
    assert len(audit) == 1


async def test_unlocking_an_unknown_user_is_404(make_client: ClientFactory) -> None:
    client = await _client(make_client)
    response = await client.post(
        "/api/admin/users/no-such-user/unlock", headers=await _admin_headers(client)
    )
    await expect_error(response, 404, "USER_004")


async def test_a_restart_does_not_unlock(make_client: ClientFactory) -> None:
    client = await _client(make_client)
    await _create_user(client, "persistent")
    await _fail(client, "persistent", ATTEMPTS)
    await client.close()
    restarted = await _client(make_client)  # the same state folder and database
    await expect_error(await _attempt(restarted, "persistent", PASSWORD), 403, "AUTH_005")


async def test_zero_attempts_turns_the_lockout_off(make_client: ClientFactory) -> None:
    client = await make_client(auth={"bcrypt_rounds": 4, "lockout_attempts": 0})
    await _create_user(client, "free")
    await _fail(client, "free", 12)
    assert (await _attempt(client, "free", PASSWORD)).status == 200
    assert query_db(client, "SELECT * FROM login_failures") == []


async def test_by_default_ten_failures_lock(make_client: ClientFactory) -> None:
    client = await make_client()
    await _create_user(client, "default")
    await _fail(client, "default", 9)
    assert (await _attempt(client, "default", PASSWORD)).status == 200
    await _fail(client, "default", 10)
    await expect_error(await _attempt(client, "default", PASSWORD), 403, "AUTH_005")

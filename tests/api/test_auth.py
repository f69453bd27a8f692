"""/api/auth: login, me, logout, and every way a token stops being accepted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import ADMIN_PASSWORD, PASSWORD, Actor, ClientFactory, bearer, login
from tests.api.helpers import expect_error, user_body
from tests.conftest import FakeClock

USER_KEYS = {
    "id",
    "username",
    "email",
    "name",
    "role",
    "group_id",
    "is_active",
    "created_at",
    "updated_at",
}


async def _me(client: TestClient[Any, Any], token: str) -> Any:
    return await client.get("/api/auth/me", headers=bearer(token))


async def _create(client: TestClient[Any, Any], admin: Actor, body: dict[str, Any]) -> Any:
    response = await client.post("/api/admin/users", json=body, headers=admin.headers)
    assert response.status == 201, await response.text()
    return await response.json()


# --- login ---------------------------------------------------------------------------------
async def test_login_answers_per_contract(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "user"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1440  # minutes, the default lifetime
    assert isinstance(body["access_token"], str) and body["access_token"].count(".") == 2
    user = body["user"]
    assert set(user) == USER_KEYS
    assert user["username"] == "admin"
    assert user["role"] == "admin"
    assert user["is_active"] is True
    assert user["group_id"] is None
    assert datetime.fromisoformat(user["created_at"]).utcoffset() is not None


async def test_expires_in_follows_the_configured_lifetime(make_client: ClientFactory) -> None:
    client = await make_client(auth={"token_ttl_minutes": 30})
    response = await client.post(
        "/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    body = await response.json()
    assert body["expires_in"] == 30
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 30 * 60


async def test_jwt_carries_the_standard_claims(client: TestClient[Any, Any]) -> None:
    token = await login(client, "admin", ADMIN_PASSWORD)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert {"exp", "iat", "jti", "sub"} <= set(claims)
    me = await (await _me(client, token)).json()
    assert claims["sub"] == me["id"]
    assert claims["exp"] - claims["iat"] == 1440 * 60
    other = jwt.decode(
        await login(client, "admin", ADMIN_PASSWORD), options={"verify_signature": False}
    )
    assert other["jti"] != claims["jti"]


async def test_wrong_password_and_unknown_user_answer_alike(client: TestClient[Any, Any]) -> None:
    wrong = await client.post("/api/auth/login", json={"username": "admin", "password": "nope!!"})
    unknown = await client.post(
        "/api/auth/login", json={"username": "nobody", "password": "nope!!"}
    )
    wrong_body = await expect_error(wrong, 401, "AUTH_001")
    unknown_body = await expect_error(unknown, 401, "AUTH_001")
    assert wrong_body == unknown_body
    assert wrong.headers.get("WWW-Authenticate") == unknown.headers.get("WWW-Authenticate")


async def test_login_username_is_case_insensitive(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/api/auth/login", json={"username": " ADMIN ", "password": ADMIN_PASSWORD}
    )
    assert response.status == 200
    assert (await response.json())["user"]["username"] == "admin"


async def test_login_password_is_case_sensitive(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD.upper()}
    )
    await expect_error(response, 401, "AUTH_001")


@pytest.mark.parametrize(
    "body",
    [{}, {"username": "admin"}, {"password": "x"}, {"username": "", "password": "x"}],
)
async def test_login_body_is_validated(client: TestClient[Any, Any], body: dict[str, Any]) -> None:
    response = await client.post("/api/auth/login", json=body)
    await expect_error(response, 422, "DB_003")


async def test_inactive_user_refused_at_login_and_with_existing_tokens(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    user = await _create(client, admin, user_body("sleepy"))
    token = await login(client, "sleepy", PASSWORD)
    response = await client.put(
        f"/api/admin/users/{user['id']}", json={"is_active": False}, headers=admin.headers
    )
    assert response.status == 200
    assert (await response.json())["is_active"] is False

    await expect_error(await _me(client, token), 403, "AUTH_004")
    response = await client.post(
        "/api/auth/login", json={"username": "sleepy", "password": PASSWORD}
    )
    await expect_error(response, 403, "AUTH_004")
    # A wrong password does not reveal that the account exists but is inactive.
    response = await client.post(
        "/api/auth/login", json={"username": "sleepy", "password": "wrong-pw"}
    )
    await expect_error(response, 401, "AUTH_001")


async def test_reactivated_user_logs_in_again_but_old_tokens_stay_dead(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    user = await _create(client, admin, user_body("phoenix"))
    old = await login(client, "phoenix", PASSWORD)
    url = f"/api/admin/users/{user['id']}"
    assert (await client.put(url, json={"is_active": False}, headers=admin.headers)).status == 200
    assert (await client.put(url, json={"is_active": True}, headers=admin.headers)).status == 200
    await expect_error(await _me(client, old), 401, "AUTH_002")
    new = await login(client, "phoenix", PASSWORD)
    assert (await _me(client, new)).status == 200


# --- me and logout -------------------------------------------------------------------------
async def test_me_returns_the_callers_own_record(
    client: TestClient[Any, Any], actors: dict[str, Actor], group: dict[str, Any]
) -> None:
    for role, actor in actors.items():
        response = await _me(client, actor.token)
        assert response.status == 200
        me = await response.json()
        assert set(me) == USER_KEYS | {"operator"}
        assert me["role"] == role
        assert me["id"] == actor.user["id"]
        assert me["username"] == actor.user["username"]
        # Only an operator has an operator record (their own status is set with its id).
        assert (me["operator"] is not None) is (role == "operator"), role
        if me["operator"] is not None:
            assert me["operator"]["user_id"] == me["id"] and me["operator"]["status"]
    supervisor = await (await _me(client, actors["supervisor"].token)).json()
    assert supervisor["group_id"] == group["id"]


async def test_logout_revokes_that_token_only(client: TestClient[Any, Any]) -> None:
    first = await login(client, "admin", ADMIN_PASSWORD)
    second = await login(client, "admin", ADMIN_PASSWORD)
    response = await client.post("/api/auth/logout", headers=bearer(first))
    assert response.status == 200
    assert await response.json() == {"success": True, "message": "Successfully logged out"}

    await expect_error(await _me(client, first), 401, "AUTH_002")
    response = await client.post("/api/auth/logout", headers=bearer(first))
    await expect_error(response, 401, "AUTH_002")
    assert (await _me(client, second)).status == 200


async def test_logout_needs_a_token(client: TestClient[Any, Any]) -> None:
    await expect_error(await client.post("/api/auth/logout"), 401, "AUTH_001")


async def test_revocation_survives_a_restart(make_client: ClientFactory) -> None:
    first_app = await make_client()
    revoked = await login(first_app, "admin", ADMIN_PASSWORD)
    kept = await login(first_app, "admin", ADMIN_PASSWORD)
    assert (await first_app.post("/api/auth/logout", headers=bearer(revoked))).status == 200
    await first_app.close()

    # Same tmp_path, so the same state folder: database and signing key are reused.
    restarted = await make_client()
    await expect_error(await _me(restarted, revoked), 401, "AUTH_002")
    assert (await _me(restarted, kept)).status == 200


# --- tokens that are refused ---------------------------------------------------------------
async def test_expired_token_is_refused(client: TestClient[Any, Any], clock: FakeClock) -> None:
    clock.advance(days=-2)
    token = await login(client, "admin", ADMIN_PASSWORD)
    clock.advance(days=2)
    body = await expect_error(await _me(client, token), 401, "AUTH_002")
    assert body["type"] == "authentication_error"
    fresh = await login(client, "admin", ADMIN_PASSWORD)
    assert (await _me(client, fresh)).status == 200


def _forged(token: str, key: str, algorithm: str = "HS256") -> str:
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(claims, key, algorithm=algorithm)


@pytest.mark.parametrize(
    "make_header",
    [
        pytest.param(
            lambda t: f"Bearer {_forged(t, 'another-key-of-32-bytes-or-more!!')}", id="key"
        ),
        pytest.param(lambda t: f"Bearer {_forged(t, '', 'none')}", id="alg-none"),
        pytest.param(lambda t: f"Bearer {t[:-4]}AAAA", id="bad-signature"),
        pytest.param(lambda t: "Bearer not.a.jwt", id="garbage"),
        pytest.param(lambda t: "Bearer ", id="empty"),
        pytest.param(lambda t: t, id="no-scheme"),
        pytest.param(lambda t: f"Token {t}", id="other-scheme"),
        pytest.param(lambda t: f"Basic {t}", id="basic"),
    ],
)
async def test_malformed_or_foreign_tokens_are_refused(
    client: TestClient[Any, Any], make_header: Any
) -> None:
    token = await login(client, "admin", ADMIN_PASSWORD)
    response = await client.get("/api/auth/me", headers={"Authorization": make_header(token)})
    body = await expect_error(response, 401, "AUTH_001")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert token not in body["detail"]


async def test_missing_authorization_header(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/auth/me")
    await expect_error(response, 401, "AUTH_001")
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_token_of_a_deleted_user_is_refused(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    user = await _create(client, admin, user_body("goner"))
    token = await login(client, "goner", PASSWORD)
    assert (await _me(client, token)).status == 200
    response = await client.delete(f"/api/admin/users/{user['id']}", headers=admin.headers)
    assert response.status == 200
    await expect_error(await _me(client, token), 401, "AUTH_001")
    response = await client.post(
        "/api/auth/login", json={"username": "goner", "password": PASSWORD}
    )
    await expect_error(response, 401, "AUTH_001")


async def test_password_change_revokes_older_tokens(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    user = await _create(client, admin, user_body("rotator"))
    old = await login(client, "rotator", PASSWORD)
    response = await client.put(
        f"/api/admin/users/{user['id']}", json={"password": "new-secret"}, headers=admin.headers
    )
    assert response.status == 200
    await expect_error(await _me(client, old), 401, "AUTH_002")
    response = await client.post(
        "/api/auth/login", json={"username": "rotator", "password": PASSWORD}
    )
    await expect_error(response, 401, "AUTH_001")
    new = await login(client, "rotator", "new-secret")
    assert (await _me(client, new)).status == 200
    # The admin's own token is not touched by changing someone else's password.
    assert (await _me(client, admin.token)).status == 200


async def test_other_updates_keep_tokens_valid(client: TestClient[Any, Any], admin: Actor) -> None:
    user = await _create(client, admin, user_body("steady"))
    token = await login(client, "steady", PASSWORD)
    response = await client.put(
        f"/api/admin/users/{user['id']}", json={"name": "Steady Eddie"}, headers=admin.headers
    )
    assert response.status == 200
    me = await _me(client, token)
    assert me.status == 200
    assert (await me.json())["name"] == "Steady Eddie"


async def test_token_expiry_follows_the_app_clock(
    client: TestClient[Any, Any], clock: FakeClock
) -> None:
    token = await login(client, "admin", ADMIN_PASSWORD)
    clock.advance(days=2)  # past the 1440-minute lifetime, by the app's clock
    await expect_error(await _me(client, token), 401, "AUTH_002")

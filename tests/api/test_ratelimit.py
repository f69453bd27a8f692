"""Rate limits: per client address and per username on login, per user elsewhere; 429s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request

from callcenterd.api.ratelimit import RateLimits, TokenBuckets
from callcenterd.domain.users import Role, User
from callcenterd.errors import RateLimited
from callcenterd.security import Principal, TokenClaims
from callcenterd.settings import RateLimitSettings
from tests.api.conftest import ADMIN_PASSWORD, PASSWORD, ClientFactory, bearer, login
from tests.api.helpers import expect_error, user_body

LOGIN = "/api/auth/login"
ADMIN_CREDENTIALS = {"username": "admin", "password": ADMIN_PASSWORD}


class Seconds:
    """A settable monotonic clock for TokenBuckets."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _expect_429(response: aiohttp.ClientResponse) -> int:
    body = await expect_error(response, 429, "RATE_LIMIT")
    assert body["type"] == "rate_limit_error"
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit(), retry_after
    seconds = int(retry_after)
    assert seconds >= 1
    assert f"{seconds} s" in body["detail"]
    return seconds


def _login(username: str, password: str = "wrong-pw") -> dict[str, str]:
    return {"username": username, "password": password}


# --- over HTTP -----------------------------------------------------------------------------
async def test_sixth_login_in_a_minute_is_429(make_client: ClientFactory) -> None:
    clock = Seconds()  # the app's limits, on a clock that moves only when told
    client = await make_client(monotonic=clock, rate_limits={"auth_per_minute": 5})
    for _ in range(5):
        assert (await client.post(LOGIN, json=ADMIN_CREDENTIALS)).status == 200
    # 5 per minute refill one token every 12 s.
    assert await _expect_429(await client.post(LOGIN, json=ADMIN_CREDENTIALS)) == 12
    clock.now += 9.5
    assert await _expect_429(await client.post(LOGIN, json=ADMIN_CREDENTIALS)) == 3
    clock.now += 2.5
    assert (await client.post(LOGIN, json=ADMIN_CREDENTIALS)).status == 200


async def test_failed_logins_count_too(make_client: ClientFactory) -> None:
    client = await make_client(rate_limits={"auth_per_minute": 3})
    for _ in range(3):
        await expect_error(await client.post(LOGIN, json=_login("admin")), 401, "AUTH_001")
    # Even the right password is refused now: guessing cannot continue.
    await _expect_429(await client.post(LOGIN, json=ADMIN_CREDENTIALS))


async def test_one_address_shares_its_budget_across_usernames(make_client: ClientFactory) -> None:
    """Per username AND per address: other names are allowed until the address runs out."""
    client = await make_client(rate_limits={"auth_per_minute": 5})
    for _ in range(3):
        await expect_error(await client.post(LOGIN, json=_login("victim")), 401, "AUTH_001")
    # A different username from the same address is still allowed...
    for username in ("other1", "other2"):
        await expect_error(await client.post(LOGIN, json=_login(username)), 401, "AUTH_001")
    # ...until the address's bucket is empty, whatever the username.
    await _expect_429(await client.post(LOGIN, json=_login("fresh-name")))
    await _expect_429(await client.post(LOGIN, json=ADMIN_CREDENTIALS))


@pytest.fixture
async def second_address() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session whose requests come from 127.0.0.2 (all of 127/8 is loopback)."""
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def test_username_bucket_holds_across_addresses(
    make_client: ClientFactory, second_address: aiohttp.ClientSession
) -> None:
    client = await make_client(rate_limits={"auth_per_minute": 5})
    url = client.make_url(LOGIN)
    for _ in range(5):
        await expect_error(await client.post(LOGIN, json=_login("Victim")), 401, "AUTH_001")
    await _expect_429(await client.post(LOGIN, json=_login("anyone")))
    try:
        async with second_address.post(url, json=_login("victim")) as response:
            # Another address, the same username (in another case): still limited...
            await _expect_429(response)
    except OSError as err:  # pragma: no cover - a system without 127.0.0.2
        pytest.skip(f"cannot send from 127.0.0.2: {err}")
    # ...while that address may log in as someone else.
    async with second_address.post(url, json=ADMIN_CREDENTIALS) as response:
        assert response.status == 200, await response.text()


async def test_general_limit_is_per_user(make_client: ClientFactory) -> None:
    client = await make_client(rate_limits={"general_per_minute": 3})
    admin = await login(client, "admin", ADMIN_PASSWORD)
    response = await client.post("/api/admin/users", json=user_body("other"), headers=bearer(admin))
    assert response.status == 201
    other = await login(client, "other", PASSWORD)

    for _ in range(2):
        assert (await client.get("/api/auth/me", headers=bearer(admin))).status == 200
    await _expect_429(await client.get("/api/auth/me", headers=bearer(admin)))
    # A second token of the same user shares the user's budget...
    await _expect_429(
        await client.get(
            "/api/auth/me", headers=bearer(await login(client, "admin", ADMIN_PASSWORD))
        )
    )
    # ...while another user, from the same address, is not limited.
    for _ in range(3):
        assert (await client.get("/api/auth/me", headers=bearer(other))).status == 200
    await _expect_429(await client.get("/api/auth/me", headers=bearer(other)))


async def test_refused_requests_are_not_charged_to_anyone(make_client: ClientFactory) -> None:
    """401s and 403s happen before the budget is spent: they cannot drain a user's budget."""
    client = await make_client(rate_limits={"general_per_minute": 2})
    for _ in range(5):
        await expect_error(await client.get("/api/auth/me"), 401, "AUTH_001")
    token = await login(client, "admin", ADMIN_PASSWORD)
    for _ in range(2):
        assert (await client.get("/api/auth/me", headers=bearer(token))).status == 200


async def test_health_and_docs_are_not_limited(make_client: ClientFactory) -> None:
    client = await make_client(rate_limits={"general_per_minute": 1, "auth_per_minute": 1})
    for _ in range(3):
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/openapi.json")).status == 200


async def test_disabled_rate_limits_let_everything_through(make_client: ClientFactory) -> None:
    client = await make_client(
        rate_limits={"enabled": False, "auth_per_minute": 1, "general_per_minute": 1}
    )
    for _ in range(4):
        await expect_error(await client.post(LOGIN, json=_login("admin")), 401, "AUTH_001")
    token = await login(client, "admin", ADMIN_PASSWORD)
    for _ in range(4):
        assert (await client.get("/api/auth/me", headers=bearer(token))).status == 200


def test_the_contract_defaults() -> None:
    defaults = RateLimitSettings()
    assert (defaults.auth_per_minute, defaults.general_per_minute) == (5, 100)
    assert defaults.dashboard_per_minute == 60
    assert defaults.enabled is True


# --- the buckets, with an injected clock ---------------------------------------------------
def test_bucket_refills_as_time_passes() -> None:
    now = Seconds()
    buckets = TokenBuckets(clock=now)
    assert [buckets.take("auth", "ip:a", 5) for _ in range(5)] == [None] * 5
    assert buckets.take("auth", "ip:a", 5) == 12  # one token per 12 s
    now.now += 6
    assert buckets.take("auth", "ip:a", 5) == 6
    now.now += 6
    assert buckets.take("auth", "ip:a", 5) is None  # refilled one token
    assert buckets.take("auth", "ip:a", 5) == 12
    now.now += 3600  # a long pause refills to the limit, never beyond
    assert [buckets.take("auth", "ip:a", 5) for _ in range(5)] == [None] * 5
    assert buckets.take("auth", "ip:a", 5) is not None


def test_buckets_are_per_scope_and_key() -> None:
    buckets = TokenBuckets(clock=Seconds())
    assert buckets.take("auth", "ip:a", 1) is None
    assert buckets.take("auth", "ip:a", 1) is not None
    assert buckets.take("auth", "ip:b", 1) is None
    assert buckets.take("general", "ip:a", 1) is None


def test_retry_after_is_at_least_one_second() -> None:
    now = Seconds()
    buckets = TokenBuckets(clock=now)
    assert buckets.take("general", "u", 6000) is None  # 100 tokens a second
    for _ in range(5999):
        buckets.take("general", "u", 6000)
    assert buckets.take("general", "u", 6000) == 1


def test_idle_buckets_are_pruned_when_full() -> None:
    now = Seconds()
    buckets = TokenBuckets(clock=now, max_keys=2)
    buckets.take("auth", "a", 1)
    buckets.take("auth", "b", 1)
    now.now += 61
    buckets.take("auth", "c", 1)  # over max_keys: idle a and b are dropped
    assert buckets.take("auth", "a", 1) is None  # a fresh, full bucket


def _principal(user_id: str) -> Principal:
    moment = datetime.now(UTC)
    user = User(
        user_id,
        user_id,
        f"{user_id}@x.org",
        user_id,
        Role.MANAGER,
        None,
        True,
        0,
        "",
        moment,
        moment,
    )
    return Principal(user, TokenClaims(user_id, "jti", moment, moment, 0))


@pytest.mark.parametrize("rate", ["auth", "general", "dashboard"])
def test_each_class_has_its_own_configurable_limit(rate: str) -> None:
    limits = {"auth_per_minute": 50, "general_per_minute": 50, "dashboard_per_minute": 50}
    limits[f"{rate}_per_minute"] = 2
    now = Seconds()
    rate_limits = RateLimits(RateLimitSettings(**limits), TokenBuckets(clock=now))
    request = make_mocked_request("GET", "/api/dashboard/stats")
    alice, bob = _principal("alice"), _principal("bob")
    for _ in range(2):
        rate_limits.check_client(rate, request, alice)
    with pytest.raises(RateLimited) as raised:
        rate_limits.check_client(rate, request, alice)
    assert raised.value.retry_after == 30  # 2 per minute: one every 30 s
    rate_limits.check_client(rate, request, bob)  # another user: own bucket
    for other in {"auth", "general", "dashboard"} - {rate}:
        rate_limits.check_client(other, request, alice)  # other classes: own limits
    now.now += 30
    rate_limits.check_client(rate, request, alice)  # refilled


def test_subject_limit_ignores_case() -> None:
    rate_limits = RateLimits(RateLimitSettings(auth_per_minute=2), TokenBuckets(clock=Seconds()))
    rate_limits.check_subject("auth", "Victim")
    rate_limits.check_subject("auth", "VICTIM")
    with pytest.raises(RateLimited):
        rate_limits.check_subject("auth", "victim")
    rate_limits.check_subject("auth", "someone-else")


def test_disabled_limits_never_raise() -> None:
    settings = RateLimitSettings(enabled=False, auth_per_minute=1)
    rate_limits = RateLimits(settings, TokenBuckets(clock=Seconds()))
    request = make_mocked_request("POST", LOGIN)
    for _ in range(5):
        rate_limits.check_client("auth", request, None)
        rate_limits.check_subject("auth", "admin")


def test_anonymous_clients_are_keyed_by_address() -> None:
    rate_limits = RateLimits(RateLimitSettings(auth_per_minute=1), TokenBuckets(clock=Seconds()))
    first = make_mocked_request("POST", LOGIN, transport=_Transport("10.0.0.1"))
    second = make_mocked_request("POST", LOGIN, transport=_Transport("10.0.0.2"))
    rate_limits.check_client("auth", first, None)
    with pytest.raises(RateLimited):
        rate_limits.check_client("auth", first, None)
    rate_limits.check_client("auth", second, None)


class _Transport:
    """Just enough of an asyncio transport for request.remote."""

    def __init__(self, host: str) -> None:
        self._host = host

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self._host, 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False


async def test_behind_a_trusted_proxy_each_client_has_its_own_login_limit(
    make_client: Any,
) -> None:
    client = await make_client(
        rate_limits={"auth_per_minute": 2}, http={"trusted_proxies": ["127.0.0.1"]}
    )
    body = {"username": "nobody", "password": "wrong-password"}

    async def attempt(forwarded: str, username: str) -> int:
        response = await client.post(
            "/api/auth/login",
            json={**body, "username": username},
            headers={"X-Forwarded-For": forwarded},
        )
        return response.status

    assert [await attempt("203.0.113.7", f"u{i}") for i in range(3)] == [401, 401, 429]
    # Another client behind the same proxy is not limited by the first one.
    assert await attempt("203.0.113.8", "u9") == 401
    # A client cannot escape its limit by writing its own X-Forwarded-For in front.
    assert await attempt("198.51.100.1, 203.0.113.7", "u10") == 429

"""Security headers on every answer; CORS off unless an admin lists origins."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd.api.headers import API_POLICY, DOCS_POLICY
from tests.api.conftest import Actor


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/auth/me"),  # 401
        ("GET", "/api/admin/users"),  # 200 (as admin)
        ("GET", "/api/nope"),  # 404
        ("DELETE", "/api/auth/login"),  # 405
        ("GET", "/healthz"),
        ("GET", "/openapi.json"),
        ("GET", "/metrics"),
    ],
)
async def test_every_answer_has_the_security_headers(
    client: TestClient[Any, Any], admin: Actor, method: str, path: str
) -> None:
    headers = admin.headers if path == "/api/admin/users" else {}
    response = await client.request(method, path, headers=headers)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Content-Security-Policy"] == API_POLICY
    assert response.headers["Cache-Control"] == "no-store"


async def test_docs_have_their_own_policy_and_static_files_may_be_cached(
    client: TestClient[Any, Any],
) -> None:
    page = await client.get("/docs")
    assert page.status == 200
    assert page.headers["Content-Security-Policy"] == DOCS_POLICY
    assert "'unsafe-inline'" not in DOCS_POLICY.split("script-src")[1].split(";")[0]
    assert page.headers["Cache-Control"] == "no-store"
    bundle = await client.get("/docs/static/swagger-ui-bundle.js")
    assert bundle.status == 200
    assert bundle.headers["X-Content-Type-Options"] == "nosniff"
    assert "Cache-Control" not in bundle.headers


async def test_websocket_handshake_has_the_headers(client: TestClient[Any, Any]) -> None:
    async with client.ws_connect("/ws/events") as ws:
        assert ws._response.headers["X-Content-Type-Options"] == "nosniff"


ORIGIN = "https://wallboard.example.com"


async def test_cors_is_off_by_default(client: TestClient[Any, Any], admin: Actor) -> None:
    response = await client.get("/api/auth/me", headers={**admin.headers, "Origin": ORIGIN})
    assert response.status == 200
    assert not [name for name in response.headers if name.lower().startswith("access-control")]
    preflight = await client.options(
        "/api/auth/me", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status == 405
    assert "Access-Control-Allow-Origin" not in preflight.headers


async def test_cors_answers_listed_origins_only(make_client: Any) -> None:
    client = await make_client(http={"cors_origins": [ORIGIN]})
    preflight = await client.options(
        "/api/admin/users",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    answer = await client.get("/api/auth/me", headers={"Origin": ORIGIN})
    assert answer.status == 401
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert answer.headers["Vary"] == "Origin"
    assert "X-Request-ID" in answer.headers["Access-Control-Expose-Headers"]
    stranger = await client.get("/api/auth/me", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in stranger.headers

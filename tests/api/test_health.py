"""/healthz, /readyz, the OpenAPI document and the offline Swagger UI."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from callcenterd.api.endpoints import ENDPOINTS
from tests.api.conftest import ADMIN_PASSWORD, Actor, ClientFactory, login
from tests.api.helpers import database_file, expect_error
from tests.eventually import eventually
from tests.unit.test_store import read_only_file


async def _ready(client: TestClient[Any, Any]) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    body: dict[str, Any] = await response.json()
    return response.status, body


# --- /healthz and /readyz ------------------------------------------------------------------
async def test_healthz_answers_without_a_token(client: TestClient[Any, Any]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == {"status": "ok"}


async def test_readyz_reports_a_writable_database_and_the_ari_link(
    client: TestClient[Any, Any],
) -> None:
    status, body = await _ready(client)
    assert status == 200
    assert body["status"] == "ready"
    assert body["database"] == "writable"
    assert body["ari"]["state"] in {"connecting", "disconnected"}
    assert body["ami"]["state"] == "disabled"  # no AMI secret configured
    # /readyz needs no token: where Asterisk is and its socket errors are for admins only.
    assert body["ari"]["url"] is None
    assert body["ari"]["last_error"] is None


async def test_the_whole_api_is_served_while_ari_is_down(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> None:
    # make_settings points ARI at a closed port.
    async def ari_down() -> tuple[int, dict[str, Any]]:
        status, body = await _ready(client)
        assert body["ari"]["state"] == "disconnected", body
        return status, body

    status, body = await eventually(ari_down)
    assert status == 200, "ARI down does not make the daemon unready"
    assert body["ari"]["state"] == "disconnected"
    assert body["ari"]["last_error"] is None
    admin = actors["admin"]
    for path in ("/api/auth/me", "/api/admin/users", "/api/admin/settings", "/api/admin/groups"):
        response = await client.get(path, headers=admin.headers)
        assert response.status == 200, (path, await response.text())
    info = await (await client.get("/api/admin/system/info", headers=admin.headers)).json()
    assert info["asterisk_connected"] is False
    assert info["database_status"] == "connected"
    assert info["ari"]["state"] == "disconnected"
    assert info["ari"]["url"].startswith("http://127.0.0.1:")
    assert "Connect" in info["ari"]["last_error"]  # the admin sees the socket error
    put = await client.put(
        "/api/admin/settings", json={"call_recording": True}, headers=admin.headers
    )
    assert put.status == 200


async def test_readyz_is_503_when_the_database_cannot_be_written(
    make_client: ClientFactory,
) -> None:
    first = await make_client()
    path = database_file(first)
    await first.close()  # a clean stop: every row is in the main file
    with read_only_file(path):
        client = await make_client()  # starts on a database it can read but not write
        try:
            status, body = await _ready(client)
            assert status == 503
            assert body["status"] == "not_ready"
            assert body["database"] == "not writable"
            assert (await client.get("/healthz")).status == 200  # the process is alive
            # Reads still work; a write is refused as DB_001.
            token = await login(client, "admin", ADMIN_PASSWORD)
            headers = {"Authorization": f"Bearer {token}"}
            assert (await client.get("/api/admin/settings", headers=headers)).status == 200
            response = await client.put(
                "/api/admin/settings", json={"call_recording": True}, headers=headers
            )
            error = await expect_error(response, 503, "DB_001")
            assert error["type"] == "service_unavailable"
            info = await (await client.get("/api/admin/system/info", headers=headers)).json()
            assert info["database_status"] == "error"
        finally:
            await client.close()
    restarted = await make_client()
    status, _ = await _ready(restarted)
    assert status == 200


# --- OpenAPI -------------------------------------------------------------------------------
async def test_openapi_document_lists_every_declared_endpoint(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    doc = await response.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"]
    endpoints = client.app[ENDPOINTS]
    assert endpoints
    for endpoint in endpoints:
        path = "/api" + endpoint.path
        assert path in doc["paths"], path
        operation = doc["paths"][path][endpoint.method.lower()]
        assert operation["summary"] == endpoint.summary
        if endpoint.roles is None:
            assert "security" not in operation, path
        else:
            assert operation["security"] == [{"bearer": []}], path
        if endpoint.body is not None:
            assert operation["requestBody"]["content"]["application/json"]["schema"]
    declared = {("/api" + e.path, e.method.lower()) for e in endpoints}
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert documented == declared


async def test_openapi_has_the_bearer_scheme_and_the_models(
    client: TestClient[Any, Any],
) -> None:
    doc = await (await client.get("/openapi.json")).json()
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert scheme == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    schemas = doc["components"]["schemas"]
    for model in (
        "UserCreate",
        "UserUpdate",
        "UserOut",
        "TokenResponse",
        "LoginRequest",
        "SystemSettings",
        "SystemSettingsUpdate",
        "AsteriskTestRequest",
        "AsteriskTestResult",
        "ErrorBody",
    ):
        assert model in schemas, model
    assert {"username", "email", "password", "role"} <= set(schemas["UserCreate"]["required"])
    assert "access_token" in schemas["TokenResponse"]["properties"]
    # Every $ref points at a schema that exists.
    refs = set(re.findall(r'"\$ref":\s*"#/components/schemas/([^"]+)"', str(doc).replace("'", '"')))
    assert refs
    assert refs <= set(schemas), refs - set(schemas)
    login_op = doc["paths"]["/api/auth/login"]["post"]
    body_schema = login_op["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/LoginRequest"}
    ok = login_op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/TokenResponse"}


# --- Swagger UI, offline -------------------------------------------------------------------
_URL = re.compile(r"""https?://""", re.IGNORECASE)
_ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


async def test_docs_page_uses_only_local_assets(client: TestClient[Any, Any]) -> None:
    response = await client.get("/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    assert not _URL.search(html), "the docs page must work without Internet access"
    assets = _ASSET.findall(html)
    assert "/docs/static/swagger-ui-bundle.js" in assets
    for asset in assets:
        assert asset.startswith("/"), asset
        fetched = await client.get(asset)
        assert fetched.status == 200, asset
        if asset.endswith(".js") and "static" not in asset:
            # Our own script: it points Swagger UI at the local document.
            script = await fetched.text()
            assert not _URL.search(script)
            assert "/openapi.json" in script


async def test_swagger_ui_bundle_is_served(client: TestClient[Any, Any]) -> None:
    response = await client.get("/docs/static/swagger-ui-bundle.js")
    assert response.status == 200
    assert "javascript" in response.content_type
    assert len(await response.read()) > 100_000
    css = await client.get("/docs/static/swagger-ui.css")
    assert css.status == 200


async def test_docs_static_does_not_serve_files_outside_its_folder(
    client: TestClient[Any, Any],
) -> None:
    for path in ("/docs/static/../../../etc/passwd", "/docs/static/%2e%2e/%2e%2e/etc/passwd"):
        response = await client.get(path)
        assert response.status in (403, 404), path
        assert "root:" not in await response.text()


async def test_unknown_paths_answer_json_404(client: TestClient[Any, Any]) -> None:
    await expect_error(await client.get("/nope"), 404, "NOT_FOUND")

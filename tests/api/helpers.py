"""Small helpers shared by the API tests: error-shape checks and request bodies."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from callcenterd import keys

ERROR_KEYS = {"detail", "type", "code", "field"}


async def expect_error(response: ClientResponse, status: int, code: str) -> dict[str, Any]:
    """Assert an error answer in the contract's shape {detail, type, code, field}."""
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/json", text
    body: dict[str, Any] = await response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["code"] == code, body
    return body


def user_body(username: str, role: str = "manager", **extra: Any) -> dict[str, Any]:
    """A valid POST /api/admin/users body; an operator gets an extension unless given one."""
    body: dict[str, Any] = {
        "username": username,
        "email": f"{username}@example.com",
        "name": f"User {username}",
        "password": "secret-pw",
        "role": role,
    }
    if role == "operator":
        body["extension"] = "2001"
    body.update(extra)
    return body


def database_file(client: TestClient[Any, Any]) -> Path:
    """The app's SQLite file: <state_dir>/callcenterd.sqlite3."""
    path: Path = client.app[keys.SETTINGS].state_dir / "callcenterd.sqlite3"
    assert path.is_file()
    return path


def query_db(client: TestClient[Any, Any], sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Read the app's database directly, bypassing the app (committed rows only)."""
    conn = sqlite3.connect(database_file(client))
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute(sql, params).fetchall())
    finally:
        conn.close()

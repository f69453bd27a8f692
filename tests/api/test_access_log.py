"""The access log: every request gets a line, routine reads at debug, the rest at info."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from tests.api.conftest import Actor


def _levels(logs: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
    return [
        (line["method"], line["status"], line["log_level"])
        for line in logs
        if line["event"] == "http_request"
    ]


async def test_routine_reads_are_debug_and_the_rest_info(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    with capture_logs() as logs:
        assert (await client.get("/api/auth/me", headers=admin.headers)).status == 200
        assert (await client.get("/api/auth/me")).status == 401
        assert (await client.get("/api/nowhere", headers=admin.headers)).status == 404
        response = await client.post("/api/auth/logout", headers=admin.headers)
        assert response.status == 200
    assert _levels(logs) == [
        ("GET", 200, "debug"),
        ("GET", 401, "info"),
        ("GET", 404, "info"),
        ("POST", 200, "info"),
    ]

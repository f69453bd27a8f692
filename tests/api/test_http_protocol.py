"""What aiohttp's HTTP parser rejects is answered as JSON in the error shape, echoing nothing.

These requests never reach a handler or a middleware, so they are sent as raw bytes to the
daemon's own runner (the one `callcenterd run` serves with) on a loopback port.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from callcenterd.api.server import ApiRunner
from callcenterd.app import create_app
from tests.api.helpers import ERROR_KEYS
from tests.conftest import FakeClock, free_port, make_settings

# Written into every bad request: no answer may contain it.
MARKER = "zq7echo"


@pytest.fixture
async def port(tmp_path: Path, clock: FakeClock) -> AsyncIterator[int]:
    app = create_app(make_settings(tmp_path / "state"), clock=clock)
    runner = ApiRunner(app, access_log=None)
    await runner.setup()
    chosen = free_port()
    await web.TCPSite(runner, "127.0.0.1", chosen).start()
    yield chosen
    await runner.cleanup()


async def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def request(line: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [line, "Host: 127.0.0.1", *headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


BAD_REQUESTS = {
    "request line too long": request(f"GET /api/{MARKER}{'a' * 20000} HTTP/1.1"),
    "header too long": request("GET /api/auth/me HTTP/1.1", f"X-Junk: {MARKER}{'b' * 20000}"),
    "too many headers": request(
        "GET /api/auth/me HTTP/1.1", *(f"X-{MARKER}-{n}: 1" for n in range(300))
    ),
    "bad bytes in the path": request(f"GET /api/\x00{MARKER}\x7f HTTP/1.1"),
    "malformed method": request(f"G(T{MARKER} /api/auth/me HTTP/1.1"),
    # llhttp knows the registered methods only: an unknown one is a parse error, not a 405.
    "unknown method": request(f"{MARKER.upper()} /api/auth/me HTTP/1.1"),
    "content-length with chunked": request(
        "POST /api/auth/login HTTP/1.1",
        "Content-Length: 5",
        "Transfer-Encoding: chunked",
        body=f"5\r\n{MARKER}\r\n0\r\n\r\n".encode(),
    ),
    "two content-lengths": request(
        "POST /api/auth/login HTTP/1.1",
        "Content-Length: 2",
        "Content-Length: 7",
        body=MARKER.encode(),
    ),
    "bad content-length": request(
        "POST /api/auth/login HTTP/1.1", f"Content-Length: {MARKER}", body=b"{}"
    ),
    "bad HTTP version": request(f"GET /api/auth/me HTTP/9.{MARKER}"),
    "not HTTP at all": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
    + MARKER.encode()
    + b"\r\n\r\n",
}


@pytest.mark.parametrize("raw", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
async def test_rejected_by_the_parser_is_json_without_echo(port: int, raw: bytes) -> None:
    status, headers, body = await exchange(port, raw)
    assert status == 400, body
    assert headers["content-type"].startswith("application/json"), headers
    error = json.loads(body)
    assert set(error) == ERROR_KEYS
    assert error["code"] == "BAD_REQUEST"
    assert error["type"] == "bad_request"
    assert MARKER.encode() not in body.lower()
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"


async def test_the_connection_still_serves_good_requests(port: int) -> None:
    status, headers, body = await exchange(port, request("GET /healthz HTTP/1.1"))
    assert status == 200, body
    assert headers["x-frame-options"] == "DENY"

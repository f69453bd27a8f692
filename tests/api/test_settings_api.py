"""/api/admin/settings and the Asterisk probe, against real local servers."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from callcenterd import keys
from callcenterd.telephony.translate import asterisk_version
from tests.api.conftest import Actor, ClientFactory, bearer, login
from tests.api.helpers import expect_error, query_db
from tests.conftest import free_port
from tests.eventually import eventually

MASK = "********"
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
SETTINGS_KEYS = {
    "call_recording",
    "auto_answer_delay",
    "max_call_duration",
    "queue_timeout",
    "callback_enabled",
    "sms_notifications",
    "email_notifications",
    "asterisk_config",
    "updated_by",
    "updated_at",
}
# Documented extensions beyond the contract's SystemSettings.
EXTENSION_KEYS = {"pause_reasons", "email_config"}
ASTERISK_KEYS = {"host", "port", "username", "password", "protocol", "timeout", "enabled"}


# --- a fake Asterisk ARI -------------------------------------------------------------------
def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _credentials(header: str) -> tuple[str, str]:
    assert header.startswith("Basic "), header
    username, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return username, password


class FakeAri:
    """Answers like Asterisk 22's ARI: /ari/asterisk/info and the /ari/events WebSocket,
    both behind HTTP Basic authentication that is really checked."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.seen: list[str] = []  # Authorization headers received, in order
        self.websockets = 0
        self.open_websockets: set[web.WebSocketResponse] = set()
        self.server: TestServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None and self.server.port is not None
        return self.server.port

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        self.seen.append(header)
        return header == _basic(self.username, self.password)

    async def info(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return web.json_response(
                {"message": "Authentication required"},
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="Asterisk REST Interface"'},
            )
        return web.json_response(
            {
                "build": {"os": "Linux", "kernel": "6.1.0", "machine": "x86_64"},
                "system": {"version": "22.10.0", "entity_id": "02:42:ac:11:00:02"},
                "config": {"name": "", "default_language": "en"},
                "status": {"startup_time": "2026-11-28T10:00:00.000+0000"},
            }
        )

    async def events(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return web.json_response({"message": "Authentication required"}, status=401)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.websockets += 1
        self.open_websockets.add(ws)
        try:
            async for message in ws:
                if message.type is WSMsgType.ERROR:
                    break
        finally:
            self.open_websockets.discard(ws)
        return ws

    async def _close_websockets(self, app: web.Application) -> None:
        for ws in list(self.open_websockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"Asterisk shutting down")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ari/asterisk/info", self.info)
        app.router.add_get("/ari/events", self.events)
        app.on_shutdown.append(self._close_websockets)
        return app


@pytest.fixture
async def fake_ari(aiohttp_server: ServerFactory) -> FakeAri:
    ari = FakeAri("ari-user", "ari-right-pw")
    ari.server = await aiohttp_server(ari.app())
    return ari


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never says a word."""
    open_writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        open_writers.append(writer)
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    for writer in open_writers:
        writer.close()
    server.close()
    await server.wait_closed()


# --- helpers -------------------------------------------------------------------------------
async def _get(client: TestClient[Any, Any], admin: Actor) -> dict[str, Any]:
    response = await client.get("/api/admin/settings", headers=admin.headers)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def _put(client: TestClient[Any, Any], admin: Actor, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.put("/api/admin/settings", json=body, headers=admin.headers)
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def _probe(client: TestClient[Any, Any], admin: Actor, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/admin/settings/asterisk/test", json=body, headers=admin.headers
    )
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


def _state_files(client: TestClient[Any, Any]) -> bytes:
    """Every byte SQLite keeps for the database: the file and its WAL and shared memory."""
    state_dir: Path = client.app[keys.SETTINGS].state_dir
    files = list(state_dir.glob("callcenterd.sqlite3*"))
    assert files
    return b"".join(p.read_bytes() for p in files)


async def _ari_state(client: TestClient[Any, Any], admin: Actor) -> dict[str, Any]:
    response = await client.get("/api/admin/system/info", headers=admin.headers)
    assert response.status == 200, await response.text()
    info: dict[str, Any] = await response.json()
    ari: dict[str, Any] = info["ari"]
    assert info["asterisk_connected"] is (ari["state"] == "connected")
    return ari


async def _wait_for_ari(
    client: TestClient[Any, Any], admin: Actor, state: str, within: float = 5.0
) -> dict[str, Any]:
    async def in_state() -> dict[str, Any]:
        ari = await _ari_state(client, admin)
        assert ari["state"] == state, ari
        return ari

    return await eventually(in_state, within)


def _asterisk(fake: FakeAri, **changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": fake.port,
        "username": fake.username,
        "password": fake.password,
        "protocol": "ARI",
        "timeout": 2,
        "enabled": True,
    }
    config.update(changes)
    return config


# --- GET -----------------------------------------------------------------------------------
async def test_get_answers_the_contract_shape_with_the_password_masked(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    body = await _get(client, admin)
    assert set(body) == SETTINGS_KEYS | EXTENSION_KEYS
    asterisk = body["asterisk_config"]
    assert set(asterisk) == ASTERISK_KEYS
    assert asterisk["password"] == MASK  # make_settings gives ARI the password "ari-secret"
    assert "ari-secret" not in json.dumps(body)
    assert asterisk["host"] == "127.0.0.1"
    assert asterisk["username"] == "callcenterd"
    assert asterisk["enabled"] is True
    assert body["updated_by"] is None  # seeded, not yet saved by anyone


async def test_get_shows_an_empty_password_when_none_is_set(make_client: ClientFactory) -> None:
    client = await make_client(ari={"password": ""})
    admin = Actor("admin", await login(client, "admin", "admin-pass"), {})
    assert (await _get(client, admin))["asterisk_config"]["password"] == ""


async def test_settings_are_for_admins_only(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> None:
    for role in ("manager", "supervisor", "operator"):
        await expect_error(
            await client.get("/api/admin/settings", headers=actors[role].headers), 403, "AUTH_003"
        )
        await expect_error(
            await client.put(
                "/api/admin/settings", json={"call_recording": True}, headers=actors[role].headers
            ),
            403,
            "AUTH_003",
        )
    await expect_error(await client.get("/api/admin/settings"), 401, "AUTH_001")


async def test_the_stored_password_is_encrypted(client: TestClient[Any, Any], admin: Actor) -> None:
    await _put(client, admin, {"asterisk_config": {"password": "Pl41n-Text-Pw!"}})
    rows = query_db(client, "SELECT data FROM system_settings")
    assert len(rows) == 1
    stored = json.loads(rows[0]["data"])["asterisk_config"]
    assert "password" not in stored
    assert stored["password_encrypted"]
    assert "Pl41n-Text-Pw!" not in stored["password_encrypted"]
    everything = _state_files(client)
    assert b"Pl41n-Text-Pw!" not in everything
    assert b"ari-secret" not in everything  # the seeded one was never stored in clear either


# --- PUT -----------------------------------------------------------------------------------
async def test_partial_put_changes_only_what_is_sent(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    before = await _get(client, admin)
    after = await _put(client, admin, {"call_recording": True, "queue_timeout": 120})
    assert after["call_recording"] is True
    assert after["queue_timeout"] == 120
    for key in SETTINGS_KEYS - {"call_recording", "queue_timeout", "updated_by", "updated_at"}:
        assert after[key] == before[key], key
    assert await _get(client, admin) == after


async def test_partial_put_inside_asterisk_config(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    before = await _get(client, admin)
    after = await _put(client, admin, {"asterisk_config": {"timeout": 7}})
    expected = {**before["asterisk_config"], "timeout": 7}
    assert after["asterisk_config"] == expected


async def test_put_back_the_get_body_keeps_the_stored_password(
    client: TestClient[Any, Any], admin: Actor, fake_ari: FakeAri
) -> None:
    await _put(client, admin, {"asterisk_config": _asterisk(fake_ari)})
    body = await _get(client, admin)
    assert body["updated_by"] == admin.user["id"]
    assert body["asterisk_config"]["password"] == MASK
    body["call_recording"] = not body["call_recording"]
    body["max_call_duration"] = 1800
    saved = await _put(client, admin, body)  # updated_by/updated_at and the mask included
    assert saved["call_recording"] is body["call_recording"]
    assert saved["max_call_duration"] == 1800
    assert saved["asterisk_config"]["password"] == MASK
    # The probe without a password uses the stored one: still the right password.
    result = await _probe(client, admin, host="127.0.0.1", port=fake_ari.port,
                             username="ari-user")  # fmt: skip
    assert result["success"] is True, result
    assert _credentials(fake_ari.seen[-1]) == ("ari-user", "ari-right-pw")


async def test_put_with_a_new_password_changes_it(
    client: TestClient[Any, Any], admin: Actor, fake_ari: FakeAri
) -> None:
    await _put(client, admin, {"asterisk_config": _asterisk(fake_ari, password="old-pw")})
    result = await _probe(client, admin, host="127.0.0.1", port=fake_ari.port,
                             username="ari-user")  # fmt: skip
    assert result["data"]["code"] == "AST_002"
    assert _credentials(fake_ari.seen[-1]) == ("ari-user", "old-pw")

    await _put(client, admin, {"asterisk_config": {"password": "ari-right-pw"}})
    result = await _probe(client, admin, host="127.0.0.1", port=fake_ari.port,
                             username="ari-user")  # fmt: skip
    assert result["success"] is True, result
    assert _credentials(fake_ari.seen[-1]) == ("ari-user", "ari-right-pw")


async def test_put_records_who_and_when(client: TestClient[Any, Any], admin: Actor) -> None:
    saved = await _put(client, admin, {"sms_notifications": True})
    assert saved["updated_by"] == admin.user["id"]
    assert saved["updated_at"] is not None
    rows = query_db(client, "SELECT updated_by, updated_at FROM system_settings")
    assert rows[0]["updated_by"] == admin.user["id"]


async def test_the_audit_log_records_the_change_without_the_password(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    await _put(
        client,
        admin,
        {
            "email_notifications": True,
            "asterisk_config": {"password": "N3w-Secret-Pw", "port": 8089},
        },
    )
    rows = query_db(
        client,
        "SELECT actor_id, action, changes FROM audit_log WHERE entity = 'settings' ORDER BY id",
    )
    assert len(rows) == 1
    assert rows[0]["actor_id"] == admin.user["id"]
    assert rows[0]["action"] == "update"
    changes = json.loads(rows[0]["changes"])
    assert changes["email_notifications"] is True
    assert changes["asterisk_config"]["port"] == 8089
    assert changes["asterisk_config"]["password"] != "N3w-Secret-Pw"
    assert "N3w-Secret-Pw" not in rows[0]["changes"]
    assert b"N3w-Secret-Pw" not in _state_files(client)


async def test_sending_the_mask_is_not_audited_as_a_password_change(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    await _put(client, admin, {"asterisk_config": {"password": MASK, "timeout": 3}})
    rows = query_db(client, "SELECT changes FROM audit_log WHERE entity = 'settings'")
    assert json.loads(rows[-1]["changes"])["asterisk_config"] == {"timeout": 3}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"asterisk_config": {"port": 0}}, ["body", "asterisk_config", "port"]),
        ({"asterisk_config": {"port": 65536}}, ["body", "asterisk_config", "port"]),
        ({"asterisk_config": {"timeout": 0}}, ["body", "asterisk_config", "timeout"]),
        ({"asterisk_config": {"protocol": "SIP"}}, ["body", "asterisk_config", "protocol"]),
        ({"asterisk_config": {"host": "pbx example"}}, ["body", "asterisk_config", "host"]),
        ({"queue_timeout": 0}, ["body", "queue_timeout"]),
        ({"auto_answer_delay": -1}, ["body", "auto_answer_delay"]),
        ({"call_recording": "maybe"}, ["body", "call_recording"]),
        ({"recording": True}, ["body", "recording"]),  # unknown field: a typo, refused
        ({"call_recording": None}, ["body", "call_recording"]),
        ({"asterisk_config": {"host": None}}, ["body", "asterisk_config", "host"]),
        ({"asterisk_config": {"port": None}}, ["body", "asterisk_config", "port"]),
    ],
)
async def test_invalid_settings_are_refused_with_422(
    client: TestClient[Any, Any], admin: Actor, body: dict[str, Any], loc: list[str]
) -> None:
    before = await _get(client, admin)
    response = await client.put("/api/admin/settings", json=body, headers=admin.headers)
    error = await expect_error(response, 422, "DB_003")
    assert error["type"] == "validation_error"
    assert [item["loc"] for item in error["detail"]] == [loc]
    assert await _get(client, admin) == before


# --- seeding from the config file and environment ------------------------------------------
async def test_config_values_seed_the_stored_settings_only_when_there_are_none(
    make_client: ClientFactory,
) -> None:
    first = await make_client(
        ari={"url": "https://pbx-one.example.com:8089", "username": "one", "timeout": 3.0}
    )
    admin = Actor("admin", await login(first, "admin", "admin-pass"), {})
    seeded = (await _get(first, admin))["asterisk_config"]
    assert seeded == {
        "host": "pbx-one.example.com",
        "port": 8089,
        "username": "one",
        "password": MASK,
        "protocol": "https",
        "timeout": 3,
        "enabled": True,
    }
    await first.close()

    # Same state folder, other values in the file/environment: the stored ones stay.
    second = await make_client(ari={"url": "http://pbx-two.example.com:8088", "username": "two"})
    admin = Actor("admin", await login(second, "admin", "admin-pass"), {})
    assert (await _get(second, admin))["asterisk_config"] == seeded


async def test_after_a_put_the_stored_settings_win_over_a_changed_environment(
    make_client: ClientFactory, fake_ari: FakeAri
) -> None:
    first = await make_client()
    admin = await _admin(first)
    await _put(first, admin, {"asterisk_config": _asterisk(fake_ari)})
    await first.close()

    second = await make_client(
        ari={"url": "http://10.9.9.9:8088", "username": "from-env", "password": "env-pw"}
    )
    admin = await _admin(second)
    stored = (await _get(second, admin))["asterisk_config"]
    assert (stored["host"], stored["port"], stored["username"]) == (
        "127.0.0.1",
        fake_ari.port,
        "ari-user",
    )
    # ...and the daemon connects with the stored credentials, not the environment's.
    await _wait_for_ari(second, admin, "connected")
    result = await _probe(second, admin, host="127.0.0.1", port=fake_ari.port,
                             username="ari-user")  # fmt: skip
    assert result["success"] is True
    assert all(_credentials(h) == ("ari-user", "ari-right-pw") for h in fake_ari.seen)


async def _admin(client: TestClient[Any, Any]) -> Actor:
    token = await login(client, "admin", "admin-pass")
    me = await (await client.get("/api/auth/me", headers=bearer(token))).json()
    return Actor("admin", token, me)


# --- the Asterisk probe --------------------------------------------------------------------
async def test_probe_against_a_closed_port_is_ast_004(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    port = free_port()
    result = await _probe(
        client, admin, host="127.0.0.1", port=port, username="u", password="p", timeout=5
    )
    assert result["success"] is False
    data = result["data"]
    # Refused at once: a connection error, not the 5 s timeout (that would be AST_001).
    assert data["code"] == "AST_004"
    assert data["error"]
    assert result["message"].startswith(data["error"])
    assert f"Cannot connect to http://127.0.0.1:{port}" in result["message"], result
    assert data["details"]["host"] == "127.0.0.1"
    assert data["details"]["port"] == port
    assert isinstance(data["details"]["possible_causes"], list)
    assert data["details"]["possible_causes"]
    assert all(isinstance(c, str) and c for c in data["details"]["possible_causes"])
    assert isinstance(data["troubleshooting"], list)
    assert data["troubleshooting"]


async def test_probe_against_a_silent_server_times_out_as_ast_001(
    client: TestClient[Any, Any], admin: Actor, silent_server: int
) -> None:
    result = await _probe(
        client, admin, host="127.0.0.1", port=silent_server, username="u", password="p", timeout=1
    )
    assert result["success"] is False
    assert result["data"]["code"] == "AST_001"
    assert "timeout" in result["data"]["error"].lower()
    # The probe's own timeout (1 s) ended it, not the client's or the server's.
    assert f"No answer from http://127.0.0.1:{silent_server} within 1 s" in result["message"]
    assert result["data"]["details"]["possible_causes"]
    assert result["data"]["troubleshooting"]


async def test_probe_with_wrong_credentials_is_ast_002(
    client: TestClient[Any, Any], admin: Actor, fake_ari: FakeAri
) -> None:
    result = await _probe(
        client, admin, host="127.0.0.1", port=fake_ari.port, username="ari-user", password="nope"
    )
    assert result["success"] is False
    data = result["data"]
    assert data["code"] == "AST_002"
    assert data["details"]["possible_causes"]
    assert data["troubleshooting"]
    assert _credentials(fake_ari.seen[-1]) == ("ari-user", "nope")


async def test_probe_against_a_plain_401_server_is_ast_002(
    client: TestClient[Any, Any], admin: Actor, aiohttp_server: ServerFactory
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=401, text="Unauthorized")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    server = await aiohttp_server(app)
    result = await _probe(
        client, admin, host="127.0.0.1", port=server.port, username="u", password="p"
    )
    assert (result["success"], result["data"]["code"]) == (False, "AST_002")


async def test_probe_against_a_server_that_is_not_ari_is_ast_004(
    client: TestClient[Any, Any], admin: Actor, aiohttp_server: ServerFactory
) -> None:
    server = await aiohttp_server(web.Application())  # 404 everywhere
    result = await _probe(
        client, admin, host="127.0.0.1", port=server.port, username="u", password="p"
    )
    assert (result["success"], result["data"]["code"]) == (False, "AST_004")
    assert "404" in result["message"]


async def test_probe_success_per_contract(
    client: TestClient[Any, Any], admin: Actor, fake_ari: FakeAri
) -> None:
    result = await _probe(
        client,
        admin,
        host="127.0.0.1",
        port=fake_ari.port,
        username="ari-user",
        password="ari-right-pw",
        protocol="ARI",
        timeout=5,
    )
    assert result["success"] is True, result
    assert "22.10.0" in result["message"]
    data = result["data"]
    assert data["asterisk_version"] == "22.10.0"
    assert data["connection_details"] == {
        "host": "127.0.0.1",
        "port": fake_ari.port,
        "protocol": "ARI",
        "status": "Connected",
    }
    assert "system" in data
    assert _credentials(fake_ari.seen[-1]) == ("ari-user", "ari-right-pw")


@pytest.mark.parametrize("sent", [None, MASK])
async def test_probe_without_a_password_uses_the_stored_one(
    client: TestClient[Any, Any], admin: Actor, fake_ari: FakeAri, sent: str | None
) -> None:
    await _put(client, admin, {"asterisk_config": {"password": "ari-right-pw"}})
    body: dict[str, Any] = {"host": "127.0.0.1", "port": fake_ari.port, "username": "ari-user"}
    if sent is not None:
        body["password"] = sent
    result = await _probe(client, admin, **body)
    assert result["success"] is True, result
    assert _credentials(fake_ari.seen[-1]) == ("ari-user", "ari-right-pw")


async def test_probe_does_not_change_the_stored_settings(
    client: TestClient[Any, Any], admin: Actor, fake_ari: FakeAri
) -> None:
    before = await _get(client, admin)
    await _probe(
        client, admin, host="127.0.0.1", port=fake_ari.port, username="x", password="other-pw"
    )
    assert await _get(client, admin) == before


async def test_probe_validates_its_body(client: TestClient[Any, Any], admin: Actor) -> None:
    for body in (
        {"host": "127.0.0.1", "port": 0, "username": "u"},
        {"host": "127.0.0.1", "username": "u", "timeout": 0},
        {"host": "127.0.0.1", "username": "u", "protocol": "SIP"},
        {"host": "127.0.0.1", "username": ""},
        {"port": 8088, "username": "u"},
    ):
        response = await client.post(
            "/api/admin/settings/asterisk/test", json=body, headers=admin.headers
        )
        await expect_error(response, 422, "DB_003")


# --- the ARI link follows the stored settings ----------------------------------------------
async def test_put_reconfigures_the_ari_link_at_once(
    client: TestClient[Any, Any], admin: Actor, fake_ari: FakeAri
) -> None:
    # make_settings points ARI at a closed port: the link cannot connect.
    await _wait_for_ari(client, admin, "disconnected")
    await _put(client, admin, {"asterisk_config": _asterisk(fake_ari)})
    ari = await _wait_for_ari(client, admin, "connected")
    assert ari["url"] == f"http://127.0.0.1:{fake_ari.port}"
    assert ari["asterisk_version"] == "22.10.0"
    assert fake_ari.websockets >= 1
    ready = await (await client.get("/readyz")).json()
    assert ready["ari"]["state"] == "connected"

    await _put(client, admin, {"asterisk_config": {"enabled": False}})
    ari = await _wait_for_ari(client, admin, "disabled", within=1.0)
    assert (await (await client.get("/readyz")).json())["ari"]["state"] == "disabled"

    await _put(client, admin, {"asterisk_config": {"enabled": True}})
    await _wait_for_ari(client, admin, "connected")


async def test_wrong_stored_credentials_leave_the_link_disconnected(
    client: TestClient[Any, Any], admin: Actor, fake_ari: FakeAri
) -> None:
    await _put(client, admin, {"asterisk_config": _asterisk(fake_ari, password="wrong")})
    ari = await _wait_for_ari(client, admin, "disconnected")
    assert ari["last_error"]
    assert "wrong" not in json.dumps(ari)
    await _put(client, admin, {"asterisk_config": {"password": "ari-right-pw"}})
    await _wait_for_ari(client, admin, "connected")


async def _answering(
    aiohttp_server: ServerFactory, status: int, body: str, content_type: str
) -> int:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, text=body, content_type=content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    server = await aiohttp_server(app)
    assert server.port is not None
    return server.port


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<html>It works!</html>", "text/html"),
        ("[1, 2, 3]", "application/json"),
        ('"just a string"', "application/json"),
        ('{"system": "not an object"}', "application/json"),
    ],
)
async def test_probe_against_an_http_server_that_is_not_ari_is_ast_004(
    client: TestClient[Any, Any],
    admin: Actor,
    aiohttp_server: ServerFactory,
    body: str,
    content_type: str,
) -> None:
    # Some other web service on the port answers 200: a clear failure, never a 500.
    port = await _answering(aiohttp_server, 200, body, content_type)
    result = await _probe(client, admin, host="127.0.0.1", port=port, username="u", password="p")
    assert result["success"] is False, result
    assert result["data"]["code"] == "AST_004"


async def test_probe_with_https_against_plain_http_is_ast_004(
    client: TestClient[Any, Any], admin: Actor, fake_ari: FakeAri
) -> None:
    result = await _probe(
        client,
        admin,
        host="127.0.0.1",
        port=fake_ari.port,
        username="ari-user",
        password="ari-right-pw",
        protocol="https",
        timeout=3,
    )
    assert result["success"] is False
    assert result["data"]["code"] == "AST_004"
    assert result["data"]["details"]["protocol"] == "https"
    # A TLS handshake the plain server cannot answer fails, rather than waiting out the 3 s.
    assert "within 3 s" not in result["message"]


@pytest.mark.parametrize(
    ("info", "version"),
    [
        ({"system": {"version": "22.10.0"}}, "22.10.0"),
        ({"system": {}}, None),
        ({}, None),
        ({"system": "22.10.0"}, None),
        ([{"system": {"version": "1"}}], None),
        (None, None),
    ],
)
def test_asterisk_version_never_crashes_on_odd_answers(info: Any, version: str | None) -> None:
    # Also used by the ARI link on whatever /asterisk/info returns.
    assert asterisk_version(info) == version

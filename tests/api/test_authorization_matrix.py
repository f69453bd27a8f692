"""The authorization matrix: every registered route x every role x the resource's owner x every
kind of token, each answer checked against the rules in route_rules.py.

The routes come from app.router, not from a list kept here: a route without a rule (a TABLE row
for /api, an OTHER_ROUTES entry outside it) fails test_every_route_has_a_rule, and every test
below walks the same registered routes. Each test runs all its cases and reports every mismatch
(route, role, case) in one assertion; each also asserts how many cases it ran.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import ClientResponse, WSMsgType
from aiohttp.test_utils import TestClient

from callcenterd import keys
from callcenterd.api.endpoints import API_PREFIXES
from callcenterd.events.stream import CLOSE_AUTH_FAILED, CLOSE_FORBIDDEN
from callcenterd.services.asterisk import AsteriskService
from callcenterd.telephony.call_control import Originate
from tests.api.authz_tokens import (
    MALFORMED,
    WS_BAD_HELLOS,
    WS_UNREADABLE_HELLOS,
    Sent,
    claims_of,
    forged_requests,
    forged_tokens,
)
from tests.api.conftest import ADMIN_PASSWORD, PASSWORD, Actor, bearer, login
from tests.api.helpers import ERROR_KEYS, query_db, user_body
from tests.api.route_rules import ADMIN, OTHER_ROUTES, TABLE, VIP_NUMBER, Row
from tests.api.routing_helpers import insert_call, make_operator
from tests.conftest import FakeClock

ROLES = ("admin", "manager", "supervisor", "operator")
ERROR_TYPES = {401: "authentication_error", 403: "authorization_error"}


@dataclass(frozen=True)
class Expect:
    status: int
    code: str | None = None  # the error code, when `status` is an error


BAD_TOKEN = Expect(401, "AUTH_001")
STALE_TOKEN = Expect(401, "AUTH_002")  # expired or revoked
DENIED = Expect(403, "AUTH_003")
INACTIVE = Expect(403, "AUTH_004")
HIDDEN = Expect(404, "DB_002")  # outside the caller's scope: not confirmed to exist


@dataclass(frozen=True)
class Route:
    """One registered route, with its rule."""

    method: str
    canonical: str  # as app.router has it, e.g. /api/v1/calls/{call_id}
    key: tuple[str, str] | None  # its TABLE row (an /api route), else None

    @property
    def row(self) -> Row:
        assert self.key is not None
        return TABLE[self.key]

    def url(self, ids: dict[str, str]) -> str:
        return self.canonical.format(**ids)


def _table_key(method: str, canonical: str) -> tuple[str, str] | None:
    for prefix in sorted(API_PREFIXES, key=len, reverse=True):
        if canonical.startswith(prefix + "/"):
            path = canonical[len(prefix) :]
            # /api/queues is the alias of the contract's /api/queues/.
            for key in ((method, path), (method, path + "/")):
                if key in TABLE:
                    return key
    return None


def registered(client: TestClient[Any, Any]) -> list[Route]:
    found = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        # "*": mount()'s refusal of every other method on a declared path (405 with its
        # Allow list, no handler behind it), checked in tests/api/test_errors.py.
        if route.resource is not None and route.method != "*"
    }
    return [Route(method, path, _table_key(method, path)) for method, path in sorted(found)]


def api_routes(client: TestClient[Any, Any]) -> list[Route]:
    return [route for route in registered(client) if route.key is not None]


def protected(client: TestClient[Any, Any]) -> list[Route]:
    return [route for route in api_routes(client) if route.row.allowed is not None]


async def _mismatch(response: ClientResponse, expect: Expect) -> str | None:
    text = await response.text()
    if response.status != expect.status:
        return f"answered {response.status}, expected {expect.status}: {text[:200]}"
    if expect.code is None:
        return None
    if response.content_type != "application/json":
        return f"not JSON: {response.content_type}"
    body = json.loads(text)
    if set(body) != ERROR_KEYS or body["code"] != expect.code:
        return f"expected {expect.code} in the error shape, got {body}"
    wanted_type = ERROR_TYPES.get(expect.status)
    if wanted_type is not None and body["type"] != wanted_type:
        return f"type {body['type']!r}, expected {wanted_type!r}"
    if expect.status == 401 and response.headers.get("WWW-Authenticate") != "Bearer":
        return "a 401 without 'WWW-Authenticate: Bearer'"
    return None


@dataclass
class Matrix:
    """Runs cases and keeps every mismatch, so one run lists all the holes at once."""

    client: TestClient[Any, Any]
    failures: list[str] = field(default_factory=list)
    checked: int = 0

    async def http(
        self, where: str, method: str, url: str, sent: Sent, expect: Expect, body: Any = None
    ) -> None:
        response = await self.client.request(
            method, url, json=body, headers=sent.headers or None, params=sent.params or None
        )
        self.record(where, await _mismatch(response, expect))

    async def socket(self, where: str, hello: str | bytes, expect_close: int | None) -> None:
        """Open /ws/events, send `hello` first; expect that close code, or auth_ok for None."""
        async with self.client.ws_connect("/ws/events") as ws:
            await (ws.send_bytes(hello) if isinstance(hello, bytes) else ws.send_str(hello))
            self.record(where, _ws_mismatch(await ws.receive(timeout=5), ws, expect_close))

    async def socket_query(self, where: str, token: str, expect_close: int | None) -> None:
        async with self.client.ws_connect("/ws/events", params={"token": token}) as ws:
            self.record(where, _ws_mismatch(await ws.receive(timeout=5), ws, expect_close))

    def record(self, where: str, problem: str | None) -> None:
        self.checked += 1
        if problem is not None:
            self.failures.append(f"{where}: {problem}")

    def assert_clean(self, expected_cases: int) -> None:
        listing = "\n".join(self.failures)
        assert not self.failures, f"{len(self.failures)} of {self.checked} cases:\n{listing}"
        assert self.checked == expected_cases, (self.checked, expected_cases)
        print(f"authorization matrix: {self.checked} cases")


def _ws_mismatch(
    msg: aiohttp.WSMessage, ws: aiohttp.ClientWebSocketResponse, expect_close: int | None
) -> str | None:
    if expect_close is None:
        if msg.type is WSMsgType.TEXT and json.loads(msg.data)["type"] == "auth_ok":
            return None
        return f"expected auth_ok, got {msg.type} {msg.data!r}"
    if msg.type is not WSMsgType.CLOSE:
        return f"expected close {expect_close}, got {msg.type} {str(msg.data)[:120]!r}"
    if ws.close_code != expect_close:
        return f"closed {ws.close_code} ({msg.extra}), expected {expect_close}"
    return None


def _ws_close_of(expect: Expect) -> int:
    return CLOSE_FORBIDDEN if expect.status == 403 else CLOSE_AUTH_FAILED


def _hello(token: str) -> str:
    return json.dumps({"type": "auth", "token": token})


def _ids(actors: dict[str, Actor], group: dict[str, Any]) -> dict[str, str]:
    """Path parameters by symbolic name, as the TABLE rows give them."""
    return {
        "manager": actors["manager"].user["id"],
        "operator": actors["operator"].user["id"],
        "group": group["id"],
        "missing": str(uuid.uuid4()),
        "number": VIP_NUMBER,
        "missing number": "+15559999",
    }


def _url(route: Route, ids: dict[str, str]) -> str:
    return route.url({name: ids[symbol] for name, symbol in route.row.params.items()})


def _other_token(actors: dict[str, Actor], role: str) -> str:
    """Another user's real token: the admin's, or the manager's for the admin."""
    return actors["manager" if role == "admin" else "admin"].token


# --- every route has a rule -----------------------------------------------------------------------
async def test_every_route_has_a_rule(client: TestClient[Any, Any]) -> None:
    routes = registered(client)
    without = [
        f"{r.method} {r.canonical}"
        for r in routes
        if r.key is None and (r.method, r.canonical) not in OTHER_ROUTES
    ]
    assert without == [], "routes without a rule in tests/api/route_rules.py"
    listed = {(r.method, r.canonical) for r in routes}
    assert OTHER_ROUTES.keys() - listed == set(), "rules for routes the app does not register"
    # Every /api row is registered under each prefix (and so walked by the tests below).
    covered = {r.key for r in routes if r.key is not None}
    assert covered == TABLE.keys()
    assert len(api_routes(client)) >= len(TABLE) * len(API_PREFIXES)


async def test_routes_outside_api_ignore_user_tokens(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> None:
    """Public, metrics and WebSocket routes answer the same with no token, a real one or a
    forged one: none of them reads the Authorization header as a user's token."""
    matrix = Matrix(client)
    others = [r for r in registered(client) if r.key is None]
    tokens: dict[str, Sent] = {**MALFORMED, "admin's token": Sent(bearer(actors["admin"].token))}
    tokens.update(forged_requests(actors["operator"].token, actors["admin"].token))
    for route in others:
        rule = OTHER_ROUTES[(route.method, route.canonical)]
        for name, sent in tokens.items():
            where = f"{route.method} {rule.path} [{rule.guard}; {name}]"
            await matrix.http(where, route.method, rule.path, sent, Expect(rule.status))
    matrix.assert_clean(len(others) * len(tokens))


# --- token variants -------------------------------------------------------------------------------
async def test_malformed_and_forged_tokens(
    client: TestClient[Any, Any], actors: dict[str, Actor], group: dict[str, Any]
) -> None:
    """Every /api route x every role x every forgery of that role's token: 401 AUTH_001 where a
    token is needed; the public login answers as usual whatever is sent. The WebSocket gets the
    forged tokens in its auth message and in ?token=, and closes 4001."""
    matrix = Matrix(client)
    ids = _ids(actors, group)
    forged = {
        role: forged_requests(a.token, _other_token(actors, role)) for role, a in actors.items()
    }
    for role, actor in actors.items():  # the tokens forged from are real and working
        await matrix.http(
            f"{role}'s own token", "GET", "/api/auth/me", Sent(actor.headers), Expect(200)
        )
    routes = api_routes(client)
    public = [r for r in routes if r.row.allowed is None]
    for route in routes:
        url, body = _url(route, ids), route.row.body
        if route.row.allowed is None:
            # Login needs no token and reads none: the same answer whatever is sent.
            cases = {**MALFORMED, **forged["operator"]}
            for name, sent in cases.items():
                expect = Expect(route.row.status)
                await matrix.http(
                    f"{route.method} {url} [{name}]", route.method, url, sent, expect, body
                )
            continue
        for name, sent in MALFORMED.items():
            await matrix.http(
                f"{route.method} {url} [{name}]", route.method, url, sent, BAD_TOKEN, body
            )
        for role in ROLES:
            for name, sent in forged[role].items():
                where = f"{route.method} {url} [{role}: {name}]"
                await matrix.http(where, route.method, url, sent, BAD_TOKEN, body)
    ws_cases = 0
    for name, hello in WS_BAD_HELLOS.items():
        await matrix.socket(f"/ws/events [{name}]", hello, CLOSE_AUTH_FAILED)
        ws_cases += 1
    for name, (frame, code) in WS_UNREADABLE_HELLOS.items():
        await matrix.socket(f"/ws/events [{name}]", frame, code)
        ws_cases += 1
    for role in ROLES:
        for name, token in forged_tokens(actors[role].token, _other_token(actors, role)).items():
            await matrix.socket(f"/ws/events [{role}: {name}]", _hello(token), CLOSE_AUTH_FAILED)
            await matrix.socket_query(
                f"/ws/events?token= [{role}: {name}]", token, CLOSE_AUTH_FAILED
            )
            ws_cases += 2
    per_role = len(next(iter(forged.values())))
    expected = (
        len(ROLES)
        + len(public) * (len(MALFORMED) + per_role)
        + (len(routes) - len(public)) * (len(MALFORMED) + len(ROLES) * per_role)
        + ws_cases
    )
    matrix.assert_clean(expected)


async def test_expired_tokens(
    client: TestClient[Any, Any], actors: dict[str, Actor], group: dict[str, Any], clock: FakeClock
) -> None:
    """A token works until the second before its exp, and from exp on is 401 AUTH_002 on every
    route for every role (and closes the WebSocket 4001); the expiry is judged by the app's
    clock, the FakeClock the fixture gave it."""
    matrix = Matrix(client)
    ids = _ids(actors, group)
    expiry = {
        role: datetime.fromtimestamp(claims_of(a.token)["exp"], UTC) for role, a in actors.items()
    }
    routes = protected(client)
    for role, actor in actors.items():
        clock.now = expiry[role] - timedelta(seconds=1)
        await matrix.http(
            f"{role}: a second before exp", "GET", "/api/auth/me", Sent(actor.headers), Expect(200)
        )
        await matrix.socket(f"/ws/events [{role}: a second before exp]", _hello(actor.token), None)
        clock.now = expiry[role]
        for route in routes:
            url = _url(route, ids)
            where = f"{route.method} {url} [{role}: expired]"
            await matrix.http(
                where, route.method, url, Sent(actor.headers), STALE_TOKEN, route.row.body
            )
        await matrix.socket(f"/ws/events [{role}: expired]", _hello(actor.token), CLOSE_AUTH_FAILED)
        await matrix.socket_query(
            f"/ws/events?token= [{role}: expired]", actor.token, CLOSE_AUTH_FAILED
        )
    matrix.assert_clean(len(ROLES) * (len(routes) + 4))


# --- revoked tokens -------------------------------------------------------------------------------
async def _put_user(
    client: TestClient[Any, Any], admin: Actor, user_id: str, **changes: Any
) -> None:
    response = await client.put(f"/api/admin/users/{user_id}", json=changes, headers=admin.headers)
    assert response.status == 200, await response.text()


async def _victim(
    client: TestClient[Any, Any], admin: Actor, role: str, name: str, extension: str
) -> tuple[str, str]:
    """A new user of `role`, logged in: (user id, token)."""
    extra = {"extension": extension} if role == "operator" else {}
    body = user_body(f"{role}-{name}", role, **extra)
    response = await client.post("/api/admin/users", json=body, headers=admin.headers)
    assert response.status == 201, await response.text()
    user_id: str = (await response.json())["id"]
    return user_id, await login(client, body["username"], body["password"])


async def _revoked_tokens(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> dict[str, dict[str, tuple[str, Expect]]]:
    """Per role, tokens that worked and were then revoked, by how: (token, expected answer)."""
    admin = actors["admin"]
    found: dict[str, dict[str, tuple[str, Expect]]] = {}
    extensions = iter(range(3001, 3100))
    for role in ROLES:
        cases: dict[str, tuple[str, Expect]] = {}
        password = ADMIN_PASSWORD if role == "admin" else PASSWORD
        spent = await login(client, actors[role].user["username"], password)
        response = await client.post("/api/auth/logout", headers=bearer(spent))
        assert response.status == 200, await response.text()
        cases["logged out"] = (spent, STALE_TOKEN)
        for how in ("password changed", "deactivated", "deactivated and reactivated", "deleted"):
            user_id, token = await _victim(
                client, admin, role, how.replace(" ", "-"), str(next(extensions))
            )
            if how == "password changed":
                await _put_user(client, admin, user_id, password="another-pw")
                cases[how] = (token, STALE_TOKEN)
            elif how == "deactivated":
                await _put_user(client, admin, user_id, is_active=False)
                cases[how] = (token, INACTIVE)
            elif how == "deleted":
                response = await client.delete(f"/api/admin/users/{user_id}", headers=admin.headers)
                assert response.status == 200, await response.text()
                cases[how] = (token, BAD_TOKEN)
            else:
                await _put_user(client, admin, user_id, is_active=False)
                await _put_user(client, admin, user_id, is_active=True)
                cases[how] = (token, STALE_TOKEN)
        found[role] = cases
    return found


async def test_revoked_tokens(
    client: TestClient[Any, Any], actors: dict[str, Actor], group: dict[str, Any]
) -> None:
    """Every route x every role x each way a token is revoked: logout (401 AUTH_002), the
    password changed (AUTH_002), the user deactivated (403 AUTH_004), deactivated then
    reactivated (the old token stays dead: AUTH_002), the user deleted (401 AUTH_001). An admin
    demoted to operator keeps the token but loses the admin routes at once (403 AUTH_003)."""
    matrix = Matrix(client)
    ids = _ids(actors, group)
    revoked = await _revoked_tokens(client, actors)
    admin = actors["admin"]
    demoted_id, demoted = await _victim(client, admin, "admin", "demoted", "3999")
    await _put_user(client, admin, demoted_id, role="operator", extension="3999")
    routes = protected(client)
    admin_only = [r for r in routes if r.row.allowed == ADMIN]
    for route in routes:
        url = _url(route, ids)
        for role, cases in revoked.items():
            for how, (token, expect) in cases.items():
                where = f"{route.method} {url} [{role}: {how}]"
                await matrix.http(
                    where, route.method, url, Sent(bearer(token)), expect, route.row.body
                )
        if route in admin_only:
            where = f"{route.method} {url} [admin demoted to operator]"
            await matrix.http(
                where, route.method, url, Sent(bearer(demoted)), DENIED, route.row.body
            )
    for role, cases in revoked.items():
        for how, (token, expect) in cases.items():
            close = _ws_close_of(expect)
            await matrix.socket(f"/ws/events [{role}: {how}]", _hello(token), close)
            await matrix.socket_query(f"/ws/events?token= [{role}: {how}]", token, close)
    for role, actor in actors.items():  # revoking those left the other tokens working
        await matrix.http(
            f"{role}'s first token", "GET", "/api/auth/me", Sent(actor.headers), Expect(200)
        )
    per_role = len(revoked["admin"])
    matrix.assert_clean(
        len(routes) * len(ROLES) * per_role + len(admin_only) + len(ROLES) * (2 * per_role + 1)
    )


# --- resource ownership ---------------------------------------------------------------------------
# How the resource of a case relates to the caller:
OWN = "own"  # their own record, or their own group's
PEER = "same group"  # another operator of the caller's group (for users: another user)
OTHER = "other group"  # a resource of the other group
SHARED = "shared"  # queues: not owned by a group

ALL = frozenset({OWN, PEER, OTHER, SHARED})
# Operators' records and calls: supervisors reach their group's, operators their own.
OWNER_REACH = {
    "admin": ALL,
    "manager": ALL,
    "supervisor": frozenset({OWN, PEER}),
    "operator": frozenset({OWN}),
}
GROUP_REACH = {
    "admin": ALL,
    "manager": ALL,
    "supervisor": frozenset({OWN}),
    "operator": frozenset({OWN}),
}
ANY_REACH = dict.fromkeys(ROLES, ALL)


@dataclass(frozen=True)
class Scoped:
    """A route's resource rule: which relations each allowed role reaches, and the answers."""

    kind: str  # user, group, queue, operator, call, channel, endpoint, group_filter
    reach: dict[str, frozenset[str]]
    ok: Expect = Expect(200)
    refused: Expect = DENIED
    body: Any = None
    # Admin answers that would destroy the fixtures (deletes): the role matrix checks them on
    # missing ids; here only the refused roles are run.
    skip_admin: bool = False


RELATIONS = {
    "user": (OWN, PEER),
    "group": (OWN, OTHER),
    "group_filter": (OWN, OTHER),
    "queue": (SHARED,),
    "operator": (OWN, PEER, OTHER),
    "call": (OWN, PEER, OTHER),
    "channel": (OWN, PEER),
    "endpoint": (OWN, PEER),
}

SCOPED: dict[tuple[str, str], Scoped] = {
    ("PUT", "/admin/users/{user_id}"): Scoped("user", ANY_REACH, body={"name": "Renamed"}),
    ("DELETE", "/admin/users/{user_id}"): Scoped("user", ANY_REACH, skip_admin=True),
    ("GET", "/admin/users/{user_id}/operator"): Scoped("user", ANY_REACH),
    ("GET", "/admin/groups/{group_id}"): Scoped("group", GROUP_REACH, refused=HIDDEN),
    ("PUT", "/admin/groups/{group_id}"): Scoped("group", ANY_REACH, body={"description": "x"}),
    ("DELETE", "/admin/groups/{group_id}"): Scoped("group", ANY_REACH, skip_admin=True),
    ("GET", "/queues/{queue_id}"): Scoped("queue", ANY_REACH),
    ("PUT", "/queues/{queue_id}"): Scoped("queue", ANY_REACH, body={"priority": 2}),
    ("DELETE", "/queues/{queue_id}"): Scoped("queue", ANY_REACH, skip_admin=True),
    ("GET", "/queues/{queue_id}/members"): Scoped("queue", ANY_REACH),
    ("GET", "/queues/{queue_id}/stats"): Scoped("queue", ANY_REACH),
    ("GET", "/queues/{queue_id}/forecast"): Scoped("queue", ANY_REACH),
    ("PUT", "/operators/{operator_id}/status"): Scoped(
        "operator", OWNER_REACH, body={"status": "online"}
    ),
    ("GET", "/operators/{operator_id}/stats"): Scoped("operator", OWNER_REACH),
    ("GET", "/calls/{call_id}"): Scoped("call", OWNER_REACH, refused=HIDDEN),
    ("PUT", "/calls/{call_id}"): Scoped("call", OWNER_REACH, refused=HIDDEN, body={"notes": "n"}),
    # Every seeded call has a recording; ARI is down, so a call in scope answers 503.
    ("GET", "/calls/{call_id}/recording"): Scoped(
        "call", OWNER_REACH, ok=Expect(503, "AST_004"), refused=HIDDEN
    ),
    ("POST", "/asterisk/channels/{channel_id}/answer"): Scoped("channel", OWNER_REACH),
    ("POST", "/asterisk/channels/{channel_id}/hangup"): Scoped("channel", OWNER_REACH),
    ("POST", "/asterisk/originate"): Scoped("endpoint", OWNER_REACH),
    **{
        ("GET", path): Scoped("group_filter", GROUP_REACH)
        for path in (
            "/dashboard/stats",
            "/dashboard/realtime",
            "/dashboard/call-analytics",
            "/dashboard/operator-activity",
            "/calls/stats",
        )
    },
}


class FakeControl:
    """Call control that records what it was asked to do."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, str]] = []

    async def answer(self, channel_id: str) -> None:
        self.actions.append(("answer", channel_id))

    async def hangup(self, channel_id: str) -> None:
        self.actions.append(("hangup", channel_id))

    async def originate(self, call: Originate) -> str:
        self.actions.append(("originate", call.endpoint))
        return "originated-1"


@dataclass
class FakeLink:
    connected_control: FakeControl
    connected: bool = True
    state: str = "connected"
    last_error: str | None = None
    asterisk_version: str | None = "20.0.0"


@dataclass
class LiveCalls:
    """The dispatcher's answers about live calls: who has which extension, who is on a channel."""

    extensions: dict[str, str]  # extension -> operator id
    on_channel: dict[str, str]  # channel id -> operator id

    def operator_of_extension(self, extension: str) -> str | None:
        return self.extensions.get(extension)

    def operators_on(self, channel_id: str) -> set[str]:
        found = self.on_channel.get(channel_id)
        return {found} if found else set()


@dataclass
class World:
    """Two groups, three operators (two in the caller's group, one in the other), their calls
    and live channels, and a queue."""

    groups: dict[str, str]  # relation -> group id (OWN: the supervisor's and operator's)
    operators: dict[str, dict[str, Any]]  # relation -> operator row
    calls: dict[str, str]  # relation -> call id
    channels: dict[str, str]  # relation -> channel id
    queue: str
    control: FakeControl

    def resource(self, kind: str, relation: str, actors: dict[str, Actor], role: str) -> str:
        if kind == "user":
            return actors[role].user["id"] if relation == OWN else self.operators[PEER]["user_id"]
        table = {
            "group": self.groups,
            "group_filter": self.groups,
            "operator": {r: op["id"] for r, op in self.operators.items()},
            "call": self.calls,
            "channel": self.channels,
            "endpoint": {r: f"PJSIP/{op['extension']}" for r, op in self.operators.items()},
        }
        return self.queue if kind == "queue" else table[kind][relation]


async def _world(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    group: dict[str, Any],
    other_group: dict[str, Any],
    clock: FakeClock,
) -> World:
    admin = actors["admin"]
    own = query_db(
        client, "SELECT * FROM operators WHERE user_id = ?", (actors["operator"].user["id"],)
    )
    operators = {
        OWN: dict(own[0]),
        PEER: await make_operator(client, admin, "peer1", "1002", group["id"]),
        OTHER: await make_operator(client, admin, "stranger1", "1003", other_group["id"]),
    }
    start = clock() - timedelta(hours=1)
    calls = {
        relation: insert_call(
            client, start, operator_id=op["id"], recording=f"rec-{op['extension']}"
        )
        for relation, op in operators.items()
    }
    response = await client.post(
        "/api/queues/",
        json={"name": "Matrix queue", "asterisk_name": "matrixq"},
        headers=admin.headers,
    )
    assert response.status == 201, await response.text()
    channels = {relation: f"channel-of-{op['extension']}" for relation, op in operators.items()}
    control = FakeControl()
    live = LiveCalls(
        {op["extension"]: op["id"] for op in operators.values()},
        {channels[r]: op["id"] for r, op in operators.items()},
    )
    extension_of = {op["user_id"]: op["extension"] for op in operators.values()}

    async def extension_of_user(user_id: str) -> str | None:
        return extension_of.get(user_id)

    # The real service and its rules, over a connected fake Asterisk and known live calls.
    services = client.app[keys.SERVICES]
    services.asterisk = AsteriskService(FakeLink(control), live, extension_of_user, clock)  # type: ignore[arg-type]
    groups = {OWN: group["id"], OTHER: other_group["id"]}
    return World(groups, operators, calls, channels, (await response.json())["id"], control)


def _scoped_cases(client: TestClient[Any, Any]) -> Iterator[tuple[Route, Scoped, str, str]]:
    for route in api_routes(client):
        assert route.key is not None
        scoped = SCOPED.get(route.key)
        if scoped is None:
            continue
        for role in ROLES:
            if role == "admin" and scoped.skip_admin:
                continue
            for relation in RELATIONS[scoped.kind]:
                yield route, scoped, role, relation


def _expected(route: Route, scoped: Scoped, role: str, relation: str) -> Expect:
    allowed = route.row.allowed
    if allowed is not None and role not in allowed:
        return DENIED
    return scoped.ok if relation in scoped.reach[role] else scoped.refused


def _request_of(route: Route, scoped: Scoped, resource: str) -> tuple[str, Any, dict[str, str]]:
    """(url, body, query) for the case: the resource goes in the path, body or query."""
    if scoped.kind == "endpoint":
        return route.canonical, {"endpoint": resource, "extension": "100"}, {}
    if scoped.kind == "group_filter":
        return route.canonical, None, {"group_id": resource}
    names = [name for name in route.row.params] or ["_"]
    return route.url({names[0]: resource}), scoped.body, {}


async def test_resource_ownership(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    group: dict[str, Any],
    other_group: dict[str, Any],
    clock: FakeClock,
) -> None:
    """Every route with a resource x every role x own / same group's / other group's resource:
    the handler's answer where the role reaches it; 403 AUTH_003 where it does not, or 404 where
    the service hides what is outside the caller's scope (calls, groups). Refused calls change
    nothing: the audit log holds exactly the allowed changes, and Asterisk was asked only for
    the allowed channel actions."""
    world = await _world(client, actors, group, other_group, clock)
    matrix = Matrix(client)
    allowed_changes: set[tuple[str, str]] = set()  # (actor id, entity id) audited
    allowed_actions: set[tuple[str, str]] = set()
    for route, scoped, role, relation in _scoped_cases(client):
        resource = world.resource(scoped.kind, relation, actors, role)
        url, body, query = _request_of(route, scoped, resource)
        expect = _expected(route, scoped, role, relation)
        sent = Sent(actors[role].headers, query)
        await matrix.http(
            f"{route.method} {url} [{role}, {relation}]", route.method, url, sent, expect, body
        )
        if expect == scoped.ok and route.method != "GET":
            if scoped.kind in ("channel", "endpoint"):  # not audited: asked of Asterisk
                allowed_actions.add((route.canonical.rsplit("/", 1)[-1], resource))
            else:
                allowed_changes.add((actors[role].user["id"], resource))
    done = set(world.control.actions)
    matrix.record(
        "Asterisk actions", None if done == allowed_actions else f"{done ^ allowed_actions}"
    )
    audited = {
        (row["actor_id"], row["entity_id"])
        for row in query_db(client, "SELECT actor_id, entity_id FROM audit_log")
        # None: the initial admin, made at start-up.
        if row["actor_id"] not in (None, actors["admin"].user["id"])
    }
    wanted = {change for change in allowed_changes if change[0] != actors["admin"].user["id"]}
    matrix.record("audit log of non-admins", None if audited == wanted else f"{audited ^ wanted}")
    expected = sum(
        len(RELATIONS[SCOPED[r.key].kind]) * (len(ROLES) - SCOPED[r.key].skip_admin)
        for r in api_routes(client)
        if r.key in SCOPED
    )
    matrix.assert_clean(expected + 2)

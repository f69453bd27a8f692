"""Who may use each route: the rule table the role and authorization matrices are run from.

The table is the specification, written from the API contract; the matrices walk the routes the
app actually registered, so a route added without a rule here fails them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.api.conftest import ADMIN_PASSWORD
from tests.conftest import free_port

ADMIN = frozenset({"admin"})
READERS = frozenset({"admin", "manager", "supervisor"})
EVERYONE = frozenset({"admin", "manager", "supervisor", "operator"})
CALLERS = ["admin", "manager", "supervisor", "operator", None]
EDITORS = frozenset({"admin", "manager"})
VIP_NUMBER = "+15550001"


@dataclass(frozen=True)
class Row:
    """Who may call an endpoint, and how an allowed call is answered by its handler."""

    allowed: frozenset[str] | None  # None: public, no token needed
    status: int  # the handler's answer to the request below
    code: str | None = None  # the handler's error code, when `status` is an error
    body: Any = None
    # Path parameters by symbolic name: "manager"/"operator" (their user id), "group", "missing".
    params: dict[str, str] = field(default_factory=dict)
    fresh_token: bool = False  # the call spends the token (logout): use a new one
    # An allowed role whose answer differs from (status, code) above.
    by_role: dict[str, tuple[int, str | None]] = field(default_factory=dict)

    def answer(self, role: str | None) -> tuple[int, str | None]:
        return self.by_role.get(role or "", (self.status, self.code))


TABLE: dict[tuple[str, str], Row] = {
    ("POST", "/auth/login"): Row(None, 200, body={"username": "admin", "password": ADMIN_PASSWORD}),
    ("GET", "/auth/me"): Row(EVERYONE, 200),
    ("POST", "/auth/logout"): Row(EVERYONE, 200, fresh_token=True),
    ("GET", "/admin/users"): Row(ADMIN, 200),
    ("POST", "/admin/users"): Row(
        ADMIN,
        201,
        body={
            "username": "matrix",
            "email": "matrix@example.com",
            "name": "Matrix",
            "password": "secret-pw",
            "role": "manager",
        },
    ),
    ("PUT", "/admin/users/{user_id}"): Row(
        ADMIN, 200, body={"name": "Renamed"}, params={"user_id": "manager"}
    ),
    ("DELETE", "/admin/users/{user_id}"): Row(
        ADMIN, 404, "USER_004", params={"user_id": "missing"}
    ),
    ("GET", "/admin/users/{user_id}/operator"): Row(ADMIN, 200, params={"user_id": "operator"}),
    ("POST", "/admin/users/{user_id}/unlock"): Row(ADMIN, 200, params={"user_id": "manager"}),
    ("GET", "/admin/groups"): Row(READERS, 200),
    ("GET", "/admin/groups/{group_id}"): Row(READERS, 200, params={"group_id": "group"}),
    ("POST", "/admin/groups"): Row(ADMIN, 201, body={"name": "Matrix group"}),
    ("PUT", "/admin/groups/{group_id}"): Row(
        ADMIN, 200, body={"description": "changed"}, params={"group_id": "group"}
    ),
    ("DELETE", "/admin/groups/{group_id}"): Row(
        ADMIN, 404, "DB_002", params={"group_id": "missing"}
    ),
    ("GET", "/vip-callers"): Row(READERS, 200),
    ("PUT", "/vip-callers/{number}"): Row(
        EDITORS, 200, body={"priority": 5}, params={"number": "number"}
    ),
    ("DELETE", "/vip-callers/{number}"): Row(
        EDITORS, 404, "DB_002", params={"number": "missing number"}
    ),
    # Erasure (issue 15): a number the matrix never stored, so every admin call answers 200.
    ("POST", "/admin/privacy/erase"): Row(ADMIN, 200, body={"phone_number": "+7 900 000-00-01"}),
    ("GET", "/admin/settings"): Row(ADMIN, 200),
    ("PUT", "/admin/settings"): Row(ADMIN, 200, body={"call_recording": True}),
    ("POST", "/admin/settings/asterisk/test"): Row(
        ADMIN,
        200,
        # A closed local port: the probe fails at once, and still answers 200.
        body={"host": "127.0.0.1", "port": free_port(), "username": "probe", "timeout": 1},
    ),
    # Email not configured in the matrix: the test answers 200 with success false at once.
    ("POST", "/admin/settings/email/test"): Row(ADMIN, 200, body={"to": "probe@example.com"}),
    # No gateway configured in these tests: the test answers 200 with success false (SMS_001).
    ("POST", "/admin/settings/sms/test"): Row(ADMIN, 200, body={"to": "+79161234567"}),
    ("GET", "/admin/system/info"): Row(ADMIN, 200),
    # The outbox and webhooks (issue 15): admins only, a message may hold personal data.
    ("GET", "/admin/outbox"): Row(ADMIN, 200),
    ("GET", "/admin/outbox/{message_id}"): Row(
        ADMIN, 404, "DB_002", params={"message_id": "missing"}
    ),
    ("POST", "/admin/outbox/{message_id}/retry"): Row(
        ADMIN, 404, "DB_002", params={"message_id": "missing"}
    ),
    ("POST", "/admin/outbox/{message_id}/cancel"): Row(
        ADMIN, 404, "DB_002", params={"message_id": "missing"}
    ),
    ("GET", "/admin/webhooks"): Row(ADMIN, 200),
    # A loopback target, refused (these tests do not allow private targets): 422 naming url.
    ("POST", "/admin/webhooks"): Row(ADMIN, 422, "DB_003", body={"url": "http://127.0.0.1:9/hook"}),
    ("GET", "/admin/webhooks/{webhook_id}"): Row(
        ADMIN, 404, "DB_002", params={"webhook_id": "missing"}
    ),
    ("PUT", "/admin/webhooks/{webhook_id}"): Row(
        ADMIN, 404, "DB_002", body={"active": False}, params={"webhook_id": "missing"}
    ),
    ("DELETE", "/admin/webhooks/{webhook_id}"): Row(
        ADMIN, 404, "DB_002", params={"webhook_id": "missing"}
    ),
    ("GET", "/admin/webhooks/{webhook_id}/deliveries"): Row(
        ADMIN, 404, "DB_002", params={"webhook_id": "missing"}
    ),
    ("POST", "/admin/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): Row(
        ADMIN, 404, "DB_002", params={"webhook_id": "missing", "delivery_id": "missing"}
    ),
    # Queues, operators, calls: per-record scoping (own group, own calls) is in their own tests;
    # "missing" ids answer the same for every allowed role.
    ("GET", "/queues/"): Row(READERS, 200),
    ("POST", "/queues/"): Row(ADMIN, 201, body={"name": "Matrix queue", "asterisk_name": "matrix"}),
    ("GET", "/queues/{queue_id}"): Row(READERS, 404, "DB_002", params={"queue_id": "missing"}),
    ("PUT", "/queues/{queue_id}"): Row(
        ADMIN, 404, "DB_002", body={"priority": 2}, params={"queue_id": "missing"}
    ),
    ("DELETE", "/queues/{queue_id}"): Row(ADMIN, 404, "DB_002", params={"queue_id": "missing"}),
    ("GET", "/queues/{queue_id}/members"): Row(
        READERS, 404, "DB_002", params={"queue_id": "missing"}
    ),
    ("GET", "/operators/"): Row(READERS, 200),
    ("GET", "/operators/pause-reasons"): Row(EVERYONE, 200),
    ("PUT", "/operators/{operator_id}/status"): Row(
        EVERYONE, 404, "DB_002", body={"status": "online"}, params={"operator_id": "missing"}
    ),
    ("GET", "/operators/{operator_id}/stats"): Row(
        EVERYONE, 404, "DB_002", params={"operator_id": "missing"}
    ),
    ("GET", "/calls/"): Row(EVERYONE, 200),
    ("GET", "/calls/export"): Row(EVERYONE, 200),
    ("POST", "/calls/"): Row(
        ADMIN, 201, body={"channel_id": "matrix-1", "caller_number": "+79001234567"}
    ),
    ("GET", "/calls/{call_id}"): Row(EVERYONE, 404, "DB_002", params={"call_id": "missing"}),
    ("GET", "/calls/{call_id}/recording"): Row(
        EVERYONE, 404, "DB_002", params={"call_id": "missing"}
    ),
    # Hold and transfers (issue 11): who may act on which live call is in test_transfers.py.
    ("POST", "/calls/{call_id}/hold"): Row(EVERYONE, 404, "DB_002", params={"call_id": "missing"}),
    ("POST", "/calls/{call_id}/unhold"): Row(
        EVERYONE, 404, "DB_002", params={"call_id": "missing"}
    ),
    ("POST", "/calls/{call_id}/transfer"): Row(
        EVERYONE,
        404,
        "DB_002",
        body={"target": {"type": "queue", "id": "q"}, "mode": "blind"},
        params={"call_id": "missing"},
    ),
    ("POST", "/calls/{call_id}/transfer/complete"): Row(
        EVERYONE, 404, "DB_002", params={"call_id": "missing"}
    ),
    ("POST", "/calls/{call_id}/transfer/cancel"): Row(
        EVERYONE, 404, "DB_002", params={"call_id": "missing"}
    ),
    # Supervision (issue 11, part 3): never for operators; an unknown call is a 404.
    ("POST", "/calls/{call_id}/supervise"): Row(
        READERS, 404, "DB_002", body={"mode": "listen"}, params={"call_id": "missing"}
    ),
    ("PUT", "/calls/{call_id}/supervise/{session_id}"): Row(
        READERS,
        404,
        "DB_002",
        body={"mode": "whisper"},
        params={"call_id": "missing", "session_id": "missing"},
    ),
    ("DELETE", "/calls/{call_id}/supervise/{session_id}"): Row(
        READERS, 404, "DB_002", params={"call_id": "missing", "session_id": "missing"}
    ),
    ("GET", "/calls/{call_id}/supervisions"): Row(
        READERS, 404, "DB_002", params={"call_id": "missing"}
    ),
    # ARI is on a closed port in these tests: allowed calls reach the handler and get AST_004.
    ("GET", "/asterisk/extensions"): Row(frozenset({"admin", "manager"}), 503, "AST_004"),
    ("GET", "/asterisk/realtime-data"): Row(READERS, 200),
    # No AMI secret in these tests: the AMI link is disabled.
    ("GET", "/asterisk/queues"): Row(frozenset({"admin", "manager"}), 503, "AST_004"),
    ("POST", "/asterisk/channels/{channel_id}/answer"): Row(
        frozenset({"admin", "operator"}),
        503,
        "AST_004",
        params={"channel_id": "missing"},
        # Not a channel of the operator's calls: refused before Asterisk is asked.
        by_role={"operator": (403, "AUTH_003")},
    ),
    ("POST", "/asterisk/channels/{channel_id}/hangup"): Row(
        frozenset({"admin", "operator"}),
        503,
        "AST_004",
        params={"channel_id": "missing"},
        # Not a channel of the operator's calls: refused before Asterisk is asked.
        by_role={"operator": (403, "AUTH_003")},
    ),
    ("POST", "/asterisk/originate"): Row(
        frozenset({"admin", "operator"}),
        503,
        "AST_004",
        body={"endpoint": "PJSIP/1001", "extension": "100"},
    ),
    ("PUT", "/calls/{call_id}"): Row(
        frozenset({"admin", "operator"}),
        404,
        "DB_002",
        body={"notes": "n"},
        params={"call_id": "missing"},
    ),
    # Statistics: the supervisor's own group is applied for them (see test_dashboard.py).
    ("GET", "/dashboard/stats"): Row(READERS, 200),
    ("GET", "/dashboard/realtime"): Row(READERS, 200),
    ("GET", "/dashboard/call-analytics"): Row(READERS, 200),
    ("GET", "/dashboard/operator-activity"): Row(READERS, 200),
    ("GET", "/calls/stats"): Row(READERS, 200),
    ("GET", "/callbacks/"): Row(EVERYONE, 200),
    # A missed call that does not exist: the same 404 for every role that may book.
    ("POST", "/callbacks/"): Row(READERS, 404, "DB_002", body={"call_id": "missing"}),
    ("GET", "/callbacks/{callback_id}"): Row(
        EVERYONE, 404, "DB_002", params={"callback_id": "missing"}
    ),
    ("PUT", "/callbacks/{callback_id}"): Row(
        READERS,
        404,
        "DB_002",
        body={"scheduled_at": "2030-01-01T10:00:00Z"},
        params={"callback_id": "missing"},
    ),
    ("POST", "/callbacks/{callback_id}/cancel"): Row(
        READERS, 404, "DB_002", params={"callback_id": "missing"}
    ),
    ("GET", "/queues/{queue_id}/stats"): Row(
        READERS, 404, "DB_002", params={"queue_id": "missing"}
    ),
    ("GET", "/queues/{queue_id}/forecast"): Row(
        READERS, 404, "DB_002", params={"queue_id": "missing"}
    ),
}


@dataclass(frozen=True)
class OtherRoute:
    """A route outside /api and the guard it stands behind; user tokens play no part in any."""

    guard: str  # "public", "metrics" (address allow-list, optional scrape token), "websocket"
    path: str  # what to request (a file, for a static folder)
    status: int  # the answer to a plain request from 127.0.0.1, whatever token is sent


# Keyed by (method, the route's canonical path) as app.router lists them; aiohttp adds a HEAD
# route beside each GET.
OTHER_ROUTES: dict[tuple[str, str], OtherRoute] = {
    **{
        (method, path): OtherRoute("public", path, 200)
        for method in ("GET", "HEAD")
        for path in ("/healthz", "/readyz", "/openapi.json", "/docs", "/docs/init.js")
    },
    **{
        (method, "/docs/static"): OtherRoute("public", "/docs/static/swagger-ui.css", 200)
        for method in ("GET", "HEAD")
    },
    # The wallboard and admin pages (callcenterd/web/): files with no data in them, so no
    # token; what they show comes from the API, under its own rules.
    **{(method, "/"): OtherRoute("public", "/", 200) for method in ("GET", "HEAD")},
    **{
        (method, "/static/{name}"): OtherRoute("public", "/static/js/main.js", 200)
        for method in ("GET", "HEAD")
    },
    # metrics.allow is loopback by default and no scrape token is set in these tests.
    **{(method, "/metrics"): OtherRoute("metrics", "/metrics", 200) for method in ("GET", "HEAD")},
    # The token comes in the first message (or ?token=); a request that is not an upgrade is a
    # bad request.
    **{
        (method, "/ws/events"): OtherRoute("websocket", "/ws/events", 400)
        for method in ("GET", "HEAD")
    },
}

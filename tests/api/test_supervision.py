"""Supervision through the API: roles, errors, and the session's life against a recording
call control (what Asterisk would be asked), with Asterisk's answers fed in by hand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd import keys
from callcenterd.events.bus import BusEvent, Subscription
from callcenterd.services.dispatcher import TalkingCall
from callcenterd.services.supervision import SupervisionService
from callcenterd.store.call_queries import CallQueries
from callcenterd.store.supervision import SupervisionRepository
from callcenterd.store.users import UserRepository
from callcenterd.telephony.call_control import DEFAULT_NODE, Bridge, SnoopDirection
from callcenterd.telephony.translate import SupervisionSignal
from tests.api.conftest import PASSWORD, Actor, login
from tests.api.helpers import expect_error, query_db
from tests.api.routing_helpers import insert_call, make_operator
from tests.conftest import FakeClock

Action = tuple[str, ...]


class RecordingControl:
    """The call-control port as supervision uses it: every request recorded; a created
    channel enters the application at once (as Asterisk's StasisStart says)."""

    node = DEFAULT_NODE
    request_timeout = 2.0

    def __init__(self) -> None:
        self.actions: list[Action] = []
        self.service: SupervisionService | None = None

    def _entered(self, channel_id: str) -> None:
        assert self.service is not None
        self.service.signal(SupervisionSignal(channel_id, "in_stasis"))

    async def create_leg(
        self, leg_id: str, endpoint: str, app_args: str, variables: Mapping[str, str]
    ) -> None:
        self.actions.append(("create_leg", leg_id, endpoint, app_args))
        self._entered(leg_id)

    async def ring(self, leg_id: str, ring_seconds: int, caller_id_of: str | None) -> None:
        self.actions.append(("ring", leg_id, str(caller_id_of)))

    async def snoop(
        self,
        channel_id: str,
        snoop_id: str,
        spy: SnoopDirection,
        whisper: SnoopDirection,
        app_args: str = "",
    ) -> None:
        self.actions.append(("snoop", channel_id, snoop_id, spy, whisper))
        self._entered(snoop_id)

    async def create_bridge(self, bridge_id: str, kind: str) -> None:
        self.actions.append(("create_bridge", bridge_id, kind))

    async def add_to_bridge(self, bridge_id: str, channel_id: str) -> None:
        self.actions.append(("add", bridge_id, channel_id))

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self.actions.append(("hangup", channel_id))

    async def destroy_bridge(self, bridge_id: str) -> None:
        self.actions.append(("destroy_bridge", bridge_id))

    def taken(self) -> list[Action]:
        taken, self.actions = self.actions, []
        return taken


@dataclass
class Scene:
    client: TestClient[Any, Any]
    service: SupervisionService
    control: RecordingControl
    events: Subscription
    call_id: str
    operator_id: str
    actors: dict[str, Actor]
    talking: dict[str, TalkingCall] = field(default_factory=dict)
    asterisk_up: bool = True

    def url(self, call_id: str | None = None, session_id: str | None = None) -> str:
        base = f"/api/calls/{call_id or self.call_id}/supervise"
        return f"{base}/{session_id}" if session_id else base

    async def start(self, who: str, mode: str = "listen", call_id: str | None = None) -> Any:
        return await self.client.post(
            self.url(call_id), json={"mode": mode}, headers=self.actors[who].headers
        )

    async def started(self, who: str, mode: str = "listen") -> dict[str, Any]:
        response = await self.start(who, mode)
        assert response.status == 202, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    async def answered(self, session: dict[str, Any]) -> None:
        # Twice, as Asterisk says it (through the caller's channel and the dialed one).
        for _ in range(2):
            self.service.signal(SupervisionSignal(f"sup-{session['id']}", "answered"))
        await self.service.settled()

    def published(self) -> list[BusEvent]:
        found = []
        while not self.events.queue.empty():
            found.append(self.events.queue.get_nowait())
        return [e for e in found if e.type.startswith("supervision_")]

    async def audit(self, who: str = "admin") -> list[dict[str, Any]]:
        response = await self.client.get(
            f"/api/calls/{self.call_id}/supervisions", headers=self.actors[who].headers
        )
        assert response.status == 200, await response.text()
        found: list[dict[str, Any]] = await response.json()
        return found


async def _user(
    client: TestClient[Any, Any], admin: Actor, name: str, role: str, **extra: Any
) -> Actor:
    body = {
        "username": name,
        "email": f"{name}@example.com",
        "name": name.title(),
        "password": PASSWORD,
        "role": role,
        **extra,
    }
    response = await client.post("/api/admin/users", json=body, headers=admin.headers)
    assert response.status == 201, await response.text()
    return Actor(role, await login(client, name, PASSWORD), await response.json())


@pytest.fixture
async def scene(
    client: TestClient[Any, Any],
    admin: Actor,
    group: dict[str, Any],
    other_group: dict[str, Any],
    clock: FakeClock,
) -> Scene:
    services = client.app[keys.SERVICES]
    operator = await make_operator(client, admin, "agent", "1001", group["id"])
    actors = {
        "admin": admin,
        "manager": await _user(client, admin, "boss", "manager", extension="2003"),
        "supervisor": await _user(
            client, admin, "coach", "supervisor", group_id=group["id"], extension="2001"
        ),
        "colleague": await _user(
            client, admin, "coach2", "supervisor", group_id=group["id"], extension="2004"
        ),
        "stranger": await _user(
            client, admin, "outsider", "supervisor", group_id=other_group["id"], extension="2002"
        ),
        "phoneless": await _user(client, admin, "nophone", "supervisor", group_id=group["id"]),
        "operator": Actor("operator", await login(client, "agent", "secret-pw"), {}),
    }
    await client.put(
        f"/api/admin/users/{admin.user['id']}", json={"extension": "2000"}, headers=admin.headers
    )
    call_id = insert_call(
        client, clock.now - timedelta(seconds=30), status="answered", operator_id=operator["id"]
    )
    control = RecordingControl()
    users = UserRepository(services.db)

    async def phone_of(user_id: str) -> str | None:
        user = await users.get(user_id)
        return user.extension if user else None

    scene: Scene
    service = SupervisionService(
        SupervisionRepository(services.db),
        CallQueries(services.db),
        lambda call: scene.talking.get(call),
        lambda node: control if scene.asterisk_up else None,
        phone_of,
        services.bus,
        clock,
    )
    control.service = service
    services.supervision = service
    scene = Scene(
        client, service, control, services.bus.subscribe(), call_id, operator["id"], actors
    )
    scene.talking[call_id] = TalkingCall(
        call_id, DEFAULT_NODE, "caller-ch", "operator-leg", operator["id"], "queue-1"
    )
    return scene


# --- the session's life -----------------------------------------------------------------------
async def test_listen_whisper_barge_and_end(scene: Scene) -> None:
    session = await scene.started("supervisor", "listen")
    sid = session["id"]
    assert session["state"] == "ringing" and session["mode"] == "listen"
    assert session["call_id"] == scene.call_id
    assert session["supervisor_id"] == scene.actors["supervisor"].user["id"]
    assert session["operator_id"] == scene.operator_id and session["extension"] == "2001"
    # The supervisor's own phone is rung, showing the caller.
    assert scene.control.taken() == [
        ("create_leg", f"sup-{sid}", "PJSIP/2001", f"ccd-sup,{sid}"),
        ("ring", f"sup-{sid}", "caller-ch"),
    ]

    await scene.answered(session)
    assert scene.control.taken() == [
        ("create_bridge", f"supervise-{sid}", "mixing"),
        ("add", f"supervise-{sid}", f"sup-{sid}"),
        ("snoop", "operator-leg", f"snoop-{sid}-1", "both", "none"),
        ("add", f"supervise-{sid}", f"snoop-{sid}-1"),
    ]

    response = await scene.client.put(
        scene.url(session_id=sid),
        json={"mode": "whisper"},
        headers=scene.actors["supervisor"].headers,
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["mode"] == "whisper"
    # A new snoop whispering to the operator alone; the old one goes, the phone stays.
    assert scene.control.taken() == [
        ("snoop", "operator-leg", f"snoop-{sid}-2", "both", "out"),
        ("add", f"supervise-{sid}", f"snoop-{sid}-2"),
        ("hangup", f"snoop-{sid}-1"),
    ]
    # The old snoop's own end is not the session's.
    scene.service.signal(SupervisionSignal(f"snoop-{sid}-1", "gone"))
    await scene.service.settled()

    response = await scene.client.put(
        scene.url(session_id=sid), json={"mode": "barge"}, headers=scene.actors["admin"].headers
    )
    assert response.status == 200
    assert scene.control.taken()[0] == ("snoop", "operator-leg", f"snoop-{sid}-3", "both", "both")

    response = await scene.client.delete(
        scene.url(session_id=sid), headers=scene.actors["supervisor"].headers
    )
    assert response.status == 200
    ended = await response.json()
    assert ended["state"] == "ended" and ended["end_reason"] == "ended_by_user"
    assert ended["answered_at"] is not None and ended["ended_at"] is not None
    assert scene.control.taken() == [
        ("hangup", f"sup-{sid}"),
        ("hangup", f"snoop-{sid}-3"),
        ("destroy_bridge", f"supervise-{sid}"),
    ]

    (audit,) = await scene.audit()
    assert [m["mode"] for m in audit["modes"]] == ["listen", "whisper", "barge"]
    assert all(m["ended_at"] is not None for m in audit["modes"])
    assert [
        (e.type, e.data["state"] if "state" in e.data else e.data["reason"])
        for e in scene.published()
    ] == [
        ("supervision_started", "ringing"),
        ("supervision_changed", "active"),
        ("supervision_changed", "active"),
        ("supervision_changed", "active"),
        ("supervision_ended", "ended_by_user"),
    ]
    # Ended is ended.
    await expect_error(
        await scene.client.delete(scene.url(session_id=sid), headers=scene.actors["admin"].headers),
        409,
        "SUP_003",
    )
    await expect_error(
        await scene.client.put(
            scene.url(session_id=sid),
            json={"mode": "listen"},
            headers=scene.actors["admin"].headers,
        ),
        409,
        "SUP_003",
    )


async def test_mode_changed_while_ringing_is_the_mode_joined(scene: Scene) -> None:
    session = await scene.started("manager", "listen")
    response = await scene.client.put(
        scene.url(session_id=session["id"]),
        json={"mode": "whisper"},
        headers=scene.actors["manager"].headers,
    )
    assert (await response.json())["state"] == "ringing"
    scene.control.taken()
    await scene.answered(session)
    snoops = [a for a in scene.control.taken() if a[0] == "snoop"]
    assert snoops == [("snoop", "operator-leg", f"snoop-{session['id']}-1", "both", "out")]
    (audit,) = await scene.audit()
    assert [m["mode"] for m in audit["modes"]] == ["whisper"]


@pytest.mark.parametrize(
    ("answered", "gone", "reason"),
    [
        (False, "sup", "not_answered"),
        (True, "sup", "supervisor_hung_up"),
        (True, "snoop", "call_ended"),
        (True, "call", "call_ended"),
    ],
)
async def test_the_session_ends_by_itself(
    scene: Scene, answered: bool, gone: str, reason: str
) -> None:
    session = await scene.started("supervisor")
    sid = session["id"]
    if answered:
        await scene.answered(session)
    scene.control.taken()
    if gone == "call":
        scene.service.call_ended(scene.call_id)
    else:
        channel = f"sup-{sid}" if gone == "sup" else f"snoop-{sid}-1"
        scene.service.signal(SupervisionSignal(channel, "gone"))
    await scene.service.settled()
    (audit,) = await scene.audit()
    assert audit["state"] == "ended" and audit["end_reason"] == reason
    hung_up = {a[1] for a in scene.control.taken() if a[0] == "hangup"}
    assert f"sup-{sid}" in hung_up
    assert scene.published()[-1].data["reason"] == reason
    # The supervisor is free to supervise again.
    assert (await scene.start("supervisor")).status == 202


async def test_after_a_restart_open_sessions_are_closed_and_leftovers_hung_up(
    scene: Scene,
) -> None:
    session = await scene.started("supervisor")
    await scene.answered(session)
    sid = session["id"]
    # A new process: nothing live, the row still open, its channels still in Asterisk.
    restarted = SupervisionService(
        SupervisionRepository(scene.client.app[keys.SERVICES].db),
        CallQueries(scene.client.app[keys.SERVICES].db),
        lambda call: None,
        lambda node: scene.control,
        lambda user: _none(),
        scene.client.app[keys.SERVICES].bus,
        lambda: scene.client.app[keys.SERVICES].clock(),
    )
    scene.control.taken()
    in_app = {f"sup-{sid}", f"snoop-{sid}-1", "1700000000.1"}
    bridges = [
        Bridge(f"supervise-{sid}", "mixing", frozenset({f"sup-{sid}", f"snoop-{sid}-1"})),
        Bridge("talk-x", "mixing", frozenset()),
    ]
    await restarted.reconciled(scene.control, in_app, bridges)  # type: ignore[arg-type]
    assert sorted(scene.control.taken()) == [
        ("destroy_bridge", f"supervise-{sid}"),
        ("hangup", f"snoop-{sid}-1"),
        ("hangup", f"sup-{sid}"),
    ]
    (audit,) = await scene.audit()
    assert audit["state"] == "ended" and audit["end_reason"] == "lost"


async def _none() -> str | None:
    return None


# --- who may ----------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["admin", "manager", "supervisor"])
async def test_admins_managers_and_the_groups_supervisors_may(scene: Scene, who: str) -> None:
    session = await scene.started(who)
    assert session["supervisor_id"] == scene.actors[who].user["id"]


async def test_a_supervisor_of_another_group_may_not(scene: Scene) -> None:
    error = await expect_error(await scene.start("stranger"), 403, "AUTH_003")
    assert "group" in error["detail"]
    await expect_error(
        await scene.client.get(
            f"/api/calls/{scene.call_id}/supervisions", headers=scene.actors["stranger"].headers
        ),
        403,
        "AUTH_003",
    )
    assert scene.control.taken() == []


async def test_an_operator_never_may(scene: Scene) -> None:
    await expect_error(await scene.start("operator"), 403, "AUTH_003")
    assert scene.control.taken() == []


async def test_only_its_supervisor_or_a_manager_changes_a_session(scene: Scene) -> None:
    session = await scene.started("supervisor")
    for method in ("put", "delete"):
        request = getattr(scene.client, method)
        extra = {"json": {"mode": "barge"}} if method == "put" else {}
        response = await request(
            scene.url(session_id=session["id"]), headers=scene.actors["colleague"].headers, **extra
        )
        await expect_error(response, 403, "AUTH_003")
    response = await scene.client.delete(
        scene.url(session_id=session["id"]), headers=scene.actors["manager"].headers
    )
    assert response.status == 200


# --- errors -----------------------------------------------------------------------------------
async def test_unknown_call_and_session(scene: Scene) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    await expect_error(await scene.start("admin", call_id=missing), 404, "DB_002")
    await expect_error(
        await scene.client.put(
            scene.url(session_id=missing),
            json={"mode": "listen"},
            headers=scene.actors["admin"].headers,
        ),
        404,
        "DB_002",
    )


async def test_a_call_not_talking_is_refused(scene: Scene) -> None:
    scene.talking.clear()
    error = await expect_error(await scene.start("supervisor"), 409, "SUP_001")
    assert "not answered" in error["detail"]


async def test_a_supervisor_without_a_phone_is_told(scene: Scene) -> None:
    error = await expect_error(await scene.start("phoneless"), 422, "SUP_002")
    assert error["field"] == "extension" and "extension" in error["detail"]


async def test_one_session_at_a_time_per_supervisor(scene: Scene) -> None:
    first = await scene.started("supervisor")
    error = await expect_error(await scene.start("supervisor", "barge"), 409, "SUP_004")
    assert first["id"] in error["detail"]


async def test_asterisk_down_is_a_503(scene: Scene) -> None:
    scene.asterisk_up = False
    await expect_error(await scene.start("supervisor"), 503, "AST_004")
    rows = query_db(scene.client, "SELECT COUNT(*) FROM supervision_sessions")
    assert rows[0][0] == 0  # nothing stored for a session that never started


async def test_a_bad_mode_is_a_422(scene: Scene) -> None:
    response = await scene.client.post(
        scene.url(), json={"mode": "spy"}, headers=scene.actors["admin"].headers
    )
    error = await expect_error(response, 422, "DB_003")
    assert error["field"] == "mode"


class ReconnectingControl(RecordingControl):
    """What the dispatcher reads from Asterisk when its link comes (back) up."""

    def __init__(self, in_app: set[str], bridges: list[Bridge]) -> None:
        super().__init__()
        self._in_app, self._bridges = in_app, bridges

    async def allow_event_types(self, types: list[str]) -> None:
        return None

    async def subscribe(self, event_source: str) -> None:
        return None

    async def endpoints(self, technology: str) -> list[Any]:
        return []

    async def app_channel_ids(self) -> set[str]:
        return set(self._in_app)

    async def bridges(self) -> list[Bridge]:
        return list(self._bridges)

    async def channel(self, channel_id: str) -> Any:
        # Only a channel taken for a caller (a stray) is read: never a supervision one.
        self.actions.append(("read_channel", channel_id))
        raise AssertionError(f"{channel_id} was taken for a caller")


async def test_reconciliation_never_takes_supervision_channels_for_callers(
    scene: Scene,
) -> None:
    """After a restart Asterisk still has a session's phone, snoop and bridge: the
    dispatcher hands them to supervision, which closes the stored session and cleans up."""
    services = scene.client.app[keys.SERVICES]
    session = await scene.started("supervisor")
    await scene.answered(session)
    sid = session["id"]
    restarted = SupervisionService(  # a new process: nothing live, the row still open
        SupervisionRepository(services.db),
        CallQueries(services.db),
        lambda call: None,
        lambda node: None,
        lambda user: _none(),
        services.bus,
        services.clock,
    )
    services.dispatcher.watch_supervision(restarted)
    left = {f"sup-{sid}", f"snoop-{sid}-1"}
    control = ReconnectingControl(left, [Bridge(f"supervise-{sid}", "mixing", frozenset(left))])
    await services.dispatcher.on_ari_connected(control)  # type: ignore[arg-type]
    await services.dispatcher.settled()

    assert sorted(control.taken()) == [
        ("destroy_bridge", f"supervise-{sid}"),
        ("hangup", f"snoop-{sid}-1"),
        ("hangup", f"sup-{sid}"),
    ]
    rows = query_db(scene.client, "SELECT COUNT(*) FROM calls")
    assert rows[0][0] == 1  # no call was made of them
    (audit,) = await scene.audit()
    assert (audit["state"], audit["end_reason"]) == ("ended", "lost")
    assert scene.published()[-1].type == "supervision_ended"

"""Hold and transfers through the API (no Asterisk): roles, errors, the record and events.

A live call is made the way Asterisk would make it: a StasisStart for the caller's channel
reaches the dispatcher, the engine rings the queue's operators (ARI is not connected, so
nothing is dialed), and the test answers a leg as the phone would (LegAnswered).
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd import keys
from callcenterd.domain import events as ev
from callcenterd.events.bus import Subscription
from callcenterd.services.dispatcher import Dispatcher
from tests.api.conftest import PASSWORD, Actor, login
from tests.conftest import FakeClock

Client = TestClient[Any, Any]


def dispatcher_of(client: Client) -> Dispatcher:
    return client.app[keys.SERVICES].dispatcher


async def make_operator(
    client: Client, admin: Actor, extension: str, group_id: str | None
) -> tuple[Actor, str]:
    body = {
        "username": f"op{extension}",
        "email": f"op{extension}@example.com",
        "name": f"Operator {extension}",
        "password": PASSWORD,
        "role": "operator",
        "extension": extension,
        **({"group_id": group_id} if group_id else {}),
    }
    response = await client.post("/api/admin/users", json=body, headers=admin.headers)
    assert response.status == 201, await response.text()
    user = await response.json()
    actor = Actor("operator", await login(client, body["username"], PASSWORD), user)
    return actor, await operator_id(client, admin, user["id"])


async def operator_id(client: Client, admin: Actor, user_id: str) -> str:
    response = await client.get(f"/api/admin/users/{user_id}/operator", headers=admin.headers)
    return str((await response.json())["id"])


async def online(client: Client, admin: Actor, op_id: str) -> None:
    response = await client.put(
        f"/api/operators/{op_id}/status", json={"status": "online"}, headers=admin.headers
    )
    assert response.status == 200, await response.text()


async def make_queue(client: Client, admin: Actor, name: str, members: list[str]) -> str:
    body = {"name": name.title(), "asterisk_name": name, "strategy": "linear", "members": members}
    response = await client.post("/api/queues/", json=body, headers=admin.headers)
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


async def arriving_call(client: Client, channel_id: str, queue: str = "support") -> str:
    """A caller enters the application; answers the new call's id."""
    dispatcher = dispatcher_of(client)
    before = set(dispatcher.engine.calls)
    dispatcher.on_ari_event(
        "default",
        {
            "type": "StasisStart",
            "args": [queue],
            "channel": {
                "id": channel_id,
                "name": f"PJSIP/trunk-{channel_id}",
                "state": "Ring",
                "caller": {"number": "5550123"},
                "dialplan": {"exten": "7000"},
            },
        },
    )
    await dispatcher.settled()
    [call_id] = set(dispatcher.engine.calls) - before
    return call_id


def ringing_leg(client: Client, call_id: str, op_id: str) -> str:
    legs = dispatcher_of(client).engine.calls[call_id].legs
    return next(leg for leg, operator in legs.items() if operator == op_id)


async def answer(client: Client, leg_id: str) -> None:
    dispatcher = dispatcher_of(client)
    await dispatcher.submit(ev.LegAnswered(leg_id))
    await dispatcher.settled()


@pytest.fixture
async def center(
    client: Client, admin: Actor, actors: dict[str, Actor], group: dict[str, Any]
) -> dict[str, Any]:
    """operator1 (1001) and op1002 in `group`, op1003 in no group; a linear queue of the
    three, 1001 first; one call talking with 1001."""
    first = await operator_id(client, admin, actors["operator"].user["id"])
    second_actor, second = await make_operator(client, admin, "1002", group["id"])
    third_actor, third = await make_operator(client, admin, "1003", None)
    for op_id in (first, second, third):
        await online(client, admin, op_id)
    queue_id = await make_queue(client, admin, "support", ["1001", "1002", "1003"])
    other_queue = await make_queue(client, admin, "sales", ["1003"])
    call_id = await arriving_call(client, "ch-1")
    await answer(client, ringing_leg(client, call_id, first))
    return {
        "call": call_id,
        "ops": {"first": first, "second": second, "third": third},
        "actors": {"second": second_actor, "third": third_actor},
        "queue": queue_id,
        "other_queue": other_queue,
    }


async def post(client: Client, actor: Actor, path: str, body: Any = None) -> tuple[int, Any]:
    response = await client.post(path, json=body, headers=actor.headers)
    return response.status, await response.json()


def kinds(detail: dict[str, Any]) -> list[str]:
    return [event["kind"] for event in detail["events"]]


async def test_hold_and_unhold_count_hold_time_apart(
    client: Client, actors: dict[str, Actor], center: dict[str, Any], clock: FakeClock
) -> None:
    operator, call = actors["operator"], center["call"]
    events: Subscription = client.app[keys.SERVICES].bus.subscribe()
    status, held = await post(client, operator, f"/api/calls/{call}/hold")
    assert status == 200, held
    assert kinds(held)[-1] == "held"
    status, again = await post(client, operator, f"/api/calls/{call}/hold")
    assert (status, again["code"]) == (409, "CALL_002")
    clock.advance(seconds=12)
    status, back = await post(client, operator, f"/api/calls/{call}/unhold")
    assert status == 200, back
    assert back["hold_seconds"] == 12
    assert back["events"][-1]["data"] == {"seconds": 12}
    status, again = await post(client, operator, f"/api/calls/{call}/unhold")
    assert (status, again["code"]) == (409, "CALL_003")
    seen = [(await events.next(1)).type for _ in range(2)]
    assert seen == ["call_held", "call_unheld"]
    events.close()


async def test_who_may_hold_a_call(
    client: Client,
    actors: dict[str, Actor],
    center: dict[str, Any],
    other_group: dict[str, Any],
    admin: Actor,
) -> None:
    call = center["call"]
    # op1002 was never rung for the call (linear: 1001 answered): it is not theirs to see.
    status, body = await post(client, center["actors"]["second"], f"/api/calls/{call}/hold")
    assert (status, body["code"]) == (404, "DB_002")
    # The group's supervisor, a manager, an admin: allowed (hold, then unhold again).
    for role in ("supervisor", "manager", "admin"):
        status, body = await post(client, actors[role], f"/api/calls/{call}/hold")
        assert status == 200, (role, body)
        status, body = await post(client, actors[role], f"/api/calls/{call}/unhold")
        assert status == 200, (role, body)
    # A supervisor of another group does not see the call at all.
    response = await client.post(
        "/api/admin/users",
        json={
            "username": "sup2",
            "email": "sup2@example.com",
            "name": "Sup Two",
            "password": PASSWORD,
            "role": "supervisor",
            "group_id": other_group["id"],
        },
        headers=admin.headers,
    )
    assert response.status == 201
    outsider = Actor("supervisor", await login(client, "sup2", PASSWORD), await response.json())
    status, body = await post(client, outsider, f"/api/calls/{call}/hold")
    assert (status, body["code"]) == (404, "DB_002")


async def test_transfer_errors(
    client: Client, actors: dict[str, Actor], center: dict[str, Any], admin: Actor
) -> None:
    operator, call, ops = actors["operator"], center["call"], center["ops"]
    path = f"/api/calls/{call}/transfer"

    async def refused(body: Any) -> tuple[int, str, str | None]:
        status, answer = await post(client, operator, path, body)
        return status, answer["code"], answer["field"]

    to_self = {"target": {"type": "operator", "id": ops["first"]}}
    assert await refused(to_self) == (422, "CALL_009", "target.id")
    unknown_queue = {"target": {"type": "queue", "id": "no-such-queue"}}
    assert await refused(unknown_queue) == (422, "CALL_010", "target.id")
    external = {"target": {"type": "external", "number": "5559000"}}
    assert await refused(external) == (422, "CALL_011", "target.type")
    attended_queue = {"target": {"type": "queue", "id": center["queue"]}, "mode": "attended"}
    assert await refused(attended_queue) == (422, "CALL_011", "mode")
    bad_shape = {"target": {"type": "operator", "number": "1"}}
    status, _, field = await refused(bad_shape)
    assert status == 422 and field in {"id", "number"}
    # An offline operator, then a busy one (rung for another call).
    response = await client.put(
        f"/api/operators/{ops['third']}/status", json={"status": "offline"}, headers=admin.headers
    )
    assert response.status == 200
    offline = {"target": {"type": "operator", "id": ops["third"]}}
    assert await refused(offline) == (409, "CALL_007", "target.id")
    await arriving_call(client, "ch-2")  # rings op1002 (1001 is talking)
    busy = {"target": {"type": "operator", "id": ops["second"]}}
    assert await refused(busy) == (409, "CALL_008", "target.id")
    status, body = await post(client, operator, f"/api/calls/{call}/transfer/complete")
    assert (status, body["code"]) == (409, "CALL_005")
    status, body = await post(client, operator, f"/api/calls/{call}/transfer/cancel")
    assert (status, body["code"]) == (409, "CALL_005")


async def test_a_waiting_call_cannot_be_held_or_transferred(
    client: Client, admin: Actor, center: dict[str, Any]
) -> None:
    waiting = await arriving_call(client, "ch-3")
    status, body = await post(client, admin, f"/api/calls/{waiting}/hold")
    assert (status, body["code"]) == (409, "CALL_001")
    target = {"target": {"type": "queue", "id": center["other_queue"]}}
    status, body = await post(client, admin, f"/api/calls/{waiting}/transfer", target)
    assert (status, body["code"]) == (409, "CALL_001")


async def test_blind_transfer_to_a_queue_frees_the_operator(
    client: Client, actors: dict[str, Actor], center: dict[str, Any], clock: FakeClock
) -> None:
    operator, call, ops = actors["operator"], center["call"], center["ops"]
    events: Subscription = client.app[keys.SERVICES].bus.subscribe()
    clock.advance(seconds=30)
    target = {"target": {"type": "queue", "id": center["other_queue"]}, "mode": "blind"}
    status, body = await post(client, operator, f"/api/calls/{call}/transfer", target)
    assert status == 200, body
    assert "transferred" in kinds(body)
    [first_leg] = [leg for leg in body["legs"] if leg["answered_at"]]
    assert (first_leg["operator_id"], first_leg["outcome"]) == (ops["first"], "transferred")
    assert first_leg["talk_seconds"] == 30
    types = []
    while len(types) < 10 and "call_queued" not in types:
        types.append((await events.next(1)).type)
    assert types[0] == "call_transferred"
    assert "call_queued" in types
    # The operator no longer has the call: a second transfer is theirs no more.
    status, again = await post(client, operator, f"/api/calls/{call}/transfer", target)
    assert (status, again["code"]) == (403, "AUTH_003")
    events.close()


async def test_attended_transfer_completed_splits_the_talk(
    client: Client, actors: dict[str, Actor], center: dict[str, Any], clock: FakeClock
) -> None:
    operator, call, ops = actors["operator"], center["call"], center["ops"]
    clock.advance(seconds=20)
    target = {"target": {"type": "operator", "id": ops["second"]}, "mode": "attended"}
    status, body = await post(client, operator, f"/api/calls/{call}/transfer", target)
    assert status == 200, body
    status, early = await post(client, operator, f"/api/calls/{call}/transfer/complete")
    assert (status, early["code"]) == (409, "CALL_006")
    clock.advance(seconds=4)
    await answer(client, ringing_leg(client, call, ops["second"]))
    clock.advance(seconds=6)  # the consultation
    status, body = await post(client, operator, f"/api/calls/{call}/transfer/complete")
    assert status == 200, body
    assert body["operator_id"] == ops["second"]
    clock.advance(seconds=50)
    dispatcher = dispatcher_of(client)
    dispatcher.on_ari_event("default", {"type": "StasisEnd", "channel": {"id": "ch-1"}})
    await dispatcher.settled()
    response = await client.get(f"/api/calls/{call}", headers=actors["admin"].headers)
    done = await response.json()
    assert done["status"] == "completed"
    assert done["duration"] == 80  # first answer to the end
    assert done["hold_seconds"] == 10  # the consultation kept the caller on hold
    answered = {leg["operator_id"]: leg for leg in done["legs"] if leg["answered_at"]}
    # 1001: 20 s talking, 10 s holding while consulting; 1002: from the consult's answer.
    assert answered[ops["first"]]["talk_seconds"] == 20
    assert answered[ops["first"]]["hold_seconds"] == 10
    assert answered[ops["first"]]["outcome"] == "transferred"
    assert answered[ops["second"]]["talk_seconds"] == 56
    assert answered[ops["second"]]["outcome"] == "caller_hangup"
    assert kinds(done).count("transfer_started") == 1 and "consult_answered" in kinds(done)
    # The operators' own figures split the call the same way.
    for op_id, talk, hold in ((ops["first"], 20, 10), (ops["second"], 56, 0)):
        response = await client.get(
            f"/api/operators/{op_id}/stats?period=today", headers=actors["admin"].headers
        )
        figures = await response.json()
        assert response.status == 200, figures
        assert (figures["parts_answered"], figures["part_talk_time"], figures["hold_time"]) == (
            1,
            talk,
            hold,
        )
        assert (figures["calls_answered"], figures["total_talk_time"]) == (1, talk)
        assert figures["calls_handled"] == (1 if op_id == ops["second"] else 0)  # who ended it
    response = await client.get(
        "/api/dashboard/call-analytics?period=today", headers=actors["admin"].headers
    )
    summary = {row["operator_id"]: row for row in (await response.json())["operator_summary"]}
    assert (summary[ops["first"]]["avg_talk_time"], summary[ops["second"]]["avg_talk_time"]) == (
        20,
        56,
    )


async def test_attended_transfer_cancelled_gives_the_call_back(
    client: Client, actors: dict[str, Actor], center: dict[str, Any]
) -> None:
    operator, call, ops = actors["operator"], center["call"], center["ops"]
    target = {"target": {"type": "operator", "id": ops["second"]}, "mode": "attended"}
    status, _ = await post(client, operator, f"/api/calls/{call}/transfer", target)
    assert status == 200
    status, body = await post(client, operator, f"/api/calls/{call}/transfer/cancel")
    assert status == 200, body
    assert body["operator_id"] == ops["first"]
    assert body["events"][-1]["kind"] == "transfer_failed"
    assert body["events"][-1]["data"]["reason"] == "cancelled"
    status, _ = await post(client, operator, f"/api/calls/{call}/hold")
    assert status == 200  # the call is the operator's again, and not held


async def test_external_transfer_when_configured(make_client: Any, admin: Actor) -> None:
    client = await make_client(transfers={"external_context": "transfers-out"})
    token = await login(client, "admin", "admin-pass")
    boss = Actor("admin", token, {})
    op_actor, op_id = await make_operator(client, boss, "1005", None)
    await online(client, boss, op_id)
    await make_queue(client, boss, "support", ["1005"])
    call = await arriving_call(client, "ch-9")
    await answer(client, ringing_leg(client, call, op_id))
    target = {"target": {"type": "external", "number": "+4930123"}, "mode": "attended"}
    status, body = await post(client, op_actor, f"/api/calls/{call}/transfer", target)
    assert (status, body["code"], body["field"]) == (422, "CALL_011", "mode")
    target["mode"] = "blind"
    status, body = await post(client, op_actor, f"/api/calls/{call}/transfer", target)
    assert status == 200, body
    assert (body["status"], body["reason"]) == ("completed", "transferred")

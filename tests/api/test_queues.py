"""/api/queues: the contract's shape, validation and conflicts, members, live counts,
deletion rules, and what is submitted to the routing engine."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd import keys
from callcenterd.domain.events import QueueRemoved, QueueUpserted
from callcenterd.domain.queues import Member, OverflowAction, Presence, Strategy
from callcenterd.store.operators import all_operator_profiles
from callcenterd.store.queues import all_queue_configs
from tests.api.conftest import Actor
from tests.api.helpers import expect_error, query_db
from tests.api.routing_helpers import (
    RecordingPort,
    execute,
    insert_call,
    make_operator,
    operator_of,
    record_submissions,
)
from tests.conftest import FakeClock

CONTRACT_KEYS = {
    "id",
    "name",
    "description",
    "asterisk_name",
    "max_wait_time",
    "priority",
    "strategy",
    "members",
    "is_active",
    "current_calls",
    "waiting_calls",
}


@pytest.fixture
def port(client: TestClient[Any, Any]) -> RecordingPort:
    return record_submissions(client)


@pytest.fixture
async def ops(
    client: TestClient[Any, Any], actors: dict[str, Actor], group: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Operator records by extension: 1001 (the operator actor), 1002 and 1003."""
    admin = actors["admin"]
    return {
        "1001": operator_of(client, actors["operator"].user["id"]),
        "1002": await make_operator(client, admin, "op1002", "1002", group["id"], skills=["en"]),
        "1003": await make_operator(client, admin, "op1003", "1003", skills=["en", "vip"]),
    }


async def create(
    client: TestClient[Any, Any], admin: Actor, **body: Any
) -> tuple[int, dict[str, Any]]:
    payload = {"name": "Main", "asterisk_name": "main", **body}
    response = await client.post("/api/queues/", json=payload, headers=admin.headers)
    return response.status, await response.json()


async def test_create_answers_the_contract_shape_and_submits_the_config(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    ops: dict[str, dict[str, Any]],
    port: RecordingPort,
) -> None:
    admin = actors["admin"]
    status, queue = await create(
        client,
        admin,
        name="VIP клиенты",
        description="Приоритетная очередь для VIP",
        asterisk_name="vip",
        max_wait_time=60,
        priority=5,
        strategy="leastrecent",
        members=["1003", {"extension": "1001", "penalty": 2}, {"operator_id": ops["1002"]["id"]}],
        required_skills=["vip"],
        numbers=["+74951234567", "200"],
        ring_timeout=20,
        wrapup_seconds=10,
        join_empty=False,
        music_class="vip_moh",
        greeting="custom/welcome-vip",
        announce_every=45,
        announce_wait=False,
        last_operator_wait=30,
    )
    assert status == 201, queue
    assert set(queue) >= CONTRACT_KEYS
    assert queue["name"] == "VIP клиенты"
    assert queue["members"] == ["1003", "1001", "1002"]
    assert (queue["current_calls"], queue["waiting_calls"]) == (0, 0)
    assert queue["strategy"] == "leastrecent"
    assert queue["numbers"] == ["+74951234567", "200"]
    assert queue["required_skills"] == ["vip"]
    assert queue["overflow_action"] == "hangup" and queue["overflow_queue_id"] is None
    assert (queue["ring_timeout"], queue["retry_delay"], queue["wrapup_seconds"]) == (20, 5, 10)
    assert queue["join_empty"] is False and queue["is_default"] is False
    assert (queue["greeting"], queue["announce_every"], queue["announce_wait"]) == (
        "custom/welcome-vip",
        45,
        False,
    )

    [event] = port.take()
    assert isinstance(event, QueueUpserted)
    config = event.queue
    assert config.id == queue["id"] and config.asterisk_name == "vip"
    assert config.strategy is Strategy.LEASTRECENT and config.priority == 5
    assert config.members == (
        Member(ops["1003"]["id"], 0),
        Member(ops["1001"]["id"], 2),
        Member(ops["1002"]["id"], 0),
    )
    assert config.required_skills == frozenset({"vip"})
    assert config.numbers == ("+74951234567", "200")
    assert config.max_wait_time == 60 and config.ring_timeout == 20
    assert config.wrapup_seconds == 10 and config.join_empty is False
    assert config.music_class == "vip_moh"
    assert queue["last_operator_wait"] == 30 and config.last_operator_wait == 30.0
    assert (config.greeting, config.announce_every, config.announce_wait) == (
        "custom/welcome-vip",
        45.0,
        False,
    )

    members = await client.get(f"/api/queues/{queue['id']}/members", headers=admin.headers)
    assert members.status == 200
    assert [(m["extension"], m["penalty"], m["position"]) for m in await members.json()] == [
        ("1003", 0, 0),
        ("1001", 2, 1),
        ("1002", 0, 2),
    ]
    audit = query_db(
        client,
        "SELECT action FROM audit_log WHERE entity = 'queue' AND entity_id = ?",
        (config.id,),
    )
    assert [row["action"] for row in audit] == ["create"]


async def test_defaults(client: TestClient[Any, Any], actors: dict[str, Actor]) -> None:
    status, queue = await create(client, actors["admin"])
    assert status == 201, queue
    assert queue["description"] == ""
    assert (queue["max_wait_time"], queue["priority"], queue["strategy"]) == (300, 1, "ringall")
    assert queue["members"] == [] and queue["is_active"] is True
    assert queue["music_class"] == "default"
    assert (queue["greeting"], queue["announce_every"], queue["announce_wait"]) == (None, 0, True)


async def test_every_strategy_is_accepted(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> None:
    for index, strategy in enumerate(Strategy):
        status, queue = await create(
            client, actors["admin"], name=f"Q{index}", asterisk_name=f"q{index}", strategy=strategy
        )
        assert status == 201, queue
        assert queue["strategy"] == strategy.value


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"asterisk_name": "general"}, "asterisk_name"),
        ({"asterisk_name": "General"}, "asterisk_name"),
        ({"asterisk_name": "has space"}, "asterisk_name"),
        ({"asterisk_name": "ünïcode"}, "asterisk_name"),
        ({"strategy": "roundrobin"}, "strategy"),
        ({"max_wait_time": 0}, "max_wait_time"),
        ({"priority": -1}, "priority"),
        ({"ring_timeout": 0}, "ring_timeout"),
        ({"overflow_action": "voicemail"}, "overflow_action"),
        ({"numbers": ["200", "200"]}, "numbers"),
        ({"numbers": ["2 00"]}, "numbers"),
        ({"required_skills": ["en", "en"]}, "required_skills"),
        ({"music_class": "../etc"}, "music_class"),
        ({"greeting": "../../etc/passwd"}, "greeting"),
        ({"greeting": "sound:hello"}, "greeting"),
        ({"announce_every": -1}, "announce_every"),
        ({"announce_every": 3601}, "announce_every"),
        ({"last_operator_wait": 601}, "last_operator_wait"),
        ({"name": ""}, "name"),
        ({"colour": "red"}, "colour"),
        ({"overflow_action": "queue"}, "overflow_queue_id"),
        ({"overflow_queue_id": "x"}, "overflow_queue_id"),
        ({"overflow_action": "queue", "overflow_queue_id": "nope"}, "overflow_queue_id"),
        ({"members": ["9999"]}, "members"),
        ({"members": ["1001", {"extension": "1001", "penalty": 1}]}, "members"),
        ({"members": [{"operator_id": "nobody"}]}, "members"),
        ({"members": [{"penalty": 1}]}, "members"),
        ({"members": [{"extension": "1001", "penalty": -1}]}, "penalty"),
    ],
)
async def test_invalid_bodies_are_422_naming_the_field(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    body: dict[str, Any],
    field: str,
) -> None:
    response = await client.post(
        "/api/queues/",
        json={"name": "Main", "asterisk_name": "main", **body},
        headers=actors["admin"].headers,
    )
    error = await expect_error(response, 422, "DB_003")
    named = {str(part) for item in error["detail"] for part in item["loc"]}
    assert error["field"] == field or field in named, error
    assert query_db(client, "SELECT COUNT(*) FROM queues")[0][0] == 0


async def test_uniqueness_conflicts_are_409_naming_the_field(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> None:
    admin = actors["admin"]
    status, _ = await create(client, admin, numbers=["100", "101"], is_default=True)
    assert status == 201
    cases = [
        ({"name": "MAIN", "asterisk_name": "other"}, "name"),
        ({"name": "Other", "asterisk_name": "MAIN"}, "asterisk_name"),
        ({"name": "Other", "asterisk_name": "other", "numbers": ["102", "101"]}, "numbers"),
        ({"name": "Other", "asterisk_name": "other", "is_default": True}, "is_default"),
    ]
    for body, field in cases:
        response = await client.post("/api/queues/", json=body, headers=admin.headers)
        error = await expect_error(response, 409, "DB_004")
        assert error["field"] == field, error
    response = await client.post(
        "/api/queues/", json={"name": "Other", "asterisk_name": "other"}, headers=admin.headers
    )
    assert response.status == 201


async def test_list_and_get_count_answered_and_waiting_calls(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    ops: dict[str, dict[str, Any]],
    clock: FakeClock,
) -> None:
    admin = actors["admin"]
    _, main = await create(client, admin, members=["1001", "1002"])
    _, other = await create(client, admin, name="Other", asterisk_name="other", priority=9)
    now = clock()
    for _ in range(2):
        insert_call(client, now, status="incoming", queue_id=main["id"])
    insert_call(client, now, status="answered", queue_id=main["id"], operator_id=ops["1001"]["id"])
    insert_call(client, now, status="completed", queue_id=main["id"], operator_id=ops["1002"]["id"])
    insert_call(client, now, status="missed", queue_id=main["id"])
    insert_call(client, now, status="incoming", queue_id=other["id"])

    for role in ("admin", "manager", "supervisor"):
        response = await client.get("/api/queues/", headers=actors[role].headers)
        assert response.status == 200
        listed = await response.json()
        # Higher priority first.
        assert [q["asterisk_name"] for q in listed] == ["other", "main"]
        counts = {q["asterisk_name"]: (q["current_calls"], q["waiting_calls"]) for q in listed}
        assert counts == {"main": (1, 2), "other": (0, 1)}
    one = await (await client.get(f"/api/queues/{main['id']}", headers=admin.headers)).json()
    assert (one["current_calls"], one["waiting_calls"]) == (1, 2)
    assert one["members"] == ["1001", "1002"]


async def test_update_is_partial_and_replaces_members(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    ops: dict[str, dict[str, Any]],
    port: RecordingPort,
) -> None:
    admin = actors["admin"]
    _, queue = await create(
        client, admin, members=["1001", "1002"], numbers=["100"], description="keep me"
    )
    port.take()
    url = f"/api/queues/{queue['id']}"
    response = await client.put(
        url,
        json={"strategy": "linear", "members": [{"extension": "1003", "penalty": 1}, "1001"]},
        headers=admin.headers,
    )
    assert response.status == 200, await response.text()
    updated = await response.json()
    assert updated["strategy"] == "linear"
    assert updated["members"] == ["1003", "1001"]
    assert updated["description"] == "keep me" and updated["numbers"] == ["100"]
    [event] = port.take()
    assert isinstance(event, QueueUpserted)
    assert event.queue.strategy is Strategy.LINEAR
    assert event.queue.members == (Member(ops["1003"]["id"], 1), Member(ops["1001"]["id"], 0))

    # Renaming to its own name (another case) is not a conflict; null is refused.
    response = await client.put(url, json={"name": "MAIN"}, headers=admin.headers)
    assert response.status == 200
    [event] = port.take()
    assert isinstance(event, QueueUpserted) and event.queue.name == "MAIN"
    error = await expect_error(
        await client.put(url, json={"strategy": None}, headers=admin.headers), 422, "DB_003"
    )
    assert error["field"] == "strategy"
    error = await expect_error(
        await client.put(url, json={"asterisk_name": "general"}, headers=admin.headers),
        422,
        "DB_003",
    )
    assert error["field"] == "asterisk_name"
    assert port.take() == []  # refused changes are not submitted


async def test_overflow_rules(
    client: TestClient[Any, Any], actors: dict[str, Actor], port: RecordingPort
) -> None:
    admin = actors["admin"]
    _, first = await create(client, admin)
    _, second = await create(
        client,
        admin,
        name="Second",
        asterisk_name="second",
        overflow_action="queue",
        overflow_queue_id=first["id"],
    )
    assert second["overflow_queue_id"] == first["id"]
    first_url = f"/api/queues/{first['id']}"
    # Into itself, or back into a queue that overflows into it: refused.
    for target in (first["id"], second["id"]):
        error = await expect_error(
            await client.put(
                first_url,
                json={"overflow_action": "queue", "overflow_queue_id": target},
                headers=admin.headers,
            ),
            422,
            "DB_003",
        )
        assert error["field"] == "overflow_queue_id"
    # Deleting a queue another overflows into: 409.
    await expect_error(await client.delete(first_url, headers=admin.headers), 409, "DB_004")
    # Switching the action away from 'queue' drops the target.
    response = await client.put(
        f"/api/queues/{second['id']}", json={"overflow_action": "dialplan"}, headers=admin.headers
    )
    updated = await response.json()
    assert (updated["overflow_action"], updated["overflow_queue_id"]) == ("dialplan", None)
    config = port.events[-1]
    assert isinstance(config, QueueUpserted)
    assert config.queue.overflow_action is OverflowAction.DIALPLAN
    assert (await client.delete(first_url, headers=admin.headers)).status == 200


async def test_default_queue_moves_only_when_unset_first(
    client: TestClient[Any, Any], actors: dict[str, Actor]
) -> None:
    admin = actors["admin"]
    _, first = await create(client, admin, is_default=True)
    _, second = await create(client, admin, name="Second", asterisk_name="second")
    second_url = f"/api/queues/{second['id']}"
    await expect_error(
        await client.put(second_url, json={"is_default": True}, headers=admin.headers),
        409,
        "DB_004",
    )
    await client.put(
        f"/api/queues/{first['id']}", json={"is_default": False}, headers=admin.headers
    )
    response = await client.put(second_url, json={"is_default": True}, headers=admin.headers)
    assert (await response.json())["is_default"] is True


async def test_delete_refuses_while_callers_wait_and_keeps_history(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    ops: dict[str, dict[str, Any]],
    port: RecordingPort,
    clock: FakeClock,
) -> None:
    admin = actors["admin"]
    _, queue = await create(client, admin, members=["1001"], numbers=["100"], is_default=True)
    port.take()
    url = f"/api/queues/{queue['id']}"
    waiting = insert_call(client, clock(), status="incoming", queue_id=queue["id"])
    error = await expect_error(await client.delete(url, headers=admin.headers), 409, "DB_004")
    assert "1 call(s) waiting" in error["detail"]
    assert port.take() == []

    execute(client, "UPDATE calls SET status = 'missed' WHERE id = ?", (waiting,))
    response = await client.delete(url, headers=admin.headers)
    assert response.status == 200, await response.text()
    assert port.take() == [QueueRemoved(queue["id"])]
    await expect_error(await client.get(url, headers=admin.headers), 404, "DB_002")
    await expect_error(await client.delete(url, headers=admin.headers), 404, "DB_002")
    listed = await (await client.get("/api/queues/", headers=admin.headers)).json()
    assert listed == []
    # The call keeps its queue (and its name) in history; the names and number are free again.
    call = await (await client.get(f"/api/calls/{waiting}", headers=admin.headers)).json()
    assert (call["queue_id"], call["queue_name"]) == (queue["id"], "Main")
    status, again = await create(client, admin, numbers=["100"], is_default=True)
    assert status == 201, again
    assert (
        query_db(client, "SELECT COUNT(*) FROM queue_members WHERE queue_id = ?", (queue["id"],))[
            0
        ][0]
        == 0
    )


async def test_unknown_queue_is_404(client: TestClient[Any, Any], actors: dict[str, Actor]) -> None:
    admin = actors["admin"]
    for method in ("GET", "DELETE"):
        response = await client.request(method, "/api/queues/nope", headers=admin.headers)
        await expect_error(response, 404, "DB_002")
    response = await client.get("/api/queues/nope/members", headers=admin.headers)
    await expect_error(response, 404, "DB_002")


async def test_deleted_operator_leaves_the_queue_config(
    client: TestClient[Any, Any], actors: dict[str, Actor], ops: dict[str, dict[str, Any]]
) -> None:
    admin = actors["admin"]
    _, queue = await create(client, admin, members=["1002", "1003"])
    response = await client.delete(
        f"/api/admin/users/{ops['1002']['user_id']}", headers=admin.headers
    )
    assert response.status == 200
    one = await (await client.get(f"/api/queues/{queue['id']}", headers=admin.headers)).json()
    assert one["members"] == ["1003"]
    [config] = await all_queue_configs(client.app[keys.SERVICES].db)
    assert config.members == (Member(ops["1003"]["id"], 0),)


async def test_loaders_for_the_dispatcher(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    ops: dict[str, dict[str, Any]],
) -> None:
    admin = actors["admin"]
    await create(client, admin, members=["1001"], required_skills=["en"], numbers=["100"])
    await create(client, admin, name="Gone", asterisk_name="gone")
    gone = query_db(client, "SELECT id FROM queues WHERE asterisk_name = 'gone'")[0]["id"]
    await client.delete(f"/api/queues/{gone}", headers=admin.headers)
    db = client.app[keys.SERVICES].db
    [config] = await all_queue_configs(db)
    assert config.asterisk_name == "main" and config.numbers == ("100",)
    assert config.required_skills == frozenset({"en"})

    # Deactivated users are not routable; paused operators keep their reason.
    await client.put(
        f"/api/admin/users/{ops['1002']['user_id']}",
        json={"is_active": False},
        headers=admin.headers,
    )
    execute(
        client,
        "UPDATE operators SET presence = 'paused', presence_reason = 'lunch' WHERE id = ?",
        (ops["1003"]["id"],),
    )
    profiles = {p.extension: p for p in await all_operator_profiles(db)}
    assert set(profiles) == {"1001", "1003"}
    vip = profiles["1003"]
    assert vip.id == ops["1003"]["id"] and vip.name == "User op1003"
    assert vip.skills == frozenset({"en", "vip"}) and vip.max_concurrent_calls == 1
    assert (vip.presence, vip.pause_reason) == (Presence.PAUSED, "lunch")
    assert profiles["1001"].presence is Presence.OFFLINE
    assert json.loads(ops["1003"]["skills"]) == ["en", "vip"]


async def test_a_restart_loads_stored_queues_and_operators_into_the_engine(
    client: TestClient[Any, Any],
    make_client: Any,
    actors: dict[str, Actor],
    ops: dict[str, dict[str, Any]],
) -> None:
    admin = actors["admin"]
    _, queue = await create(client, admin, members=["1001", "1002"])
    response = await client.put(
        f"/api/operators/{ops['1001']['id']}/status",
        json={"status": "online"},
        headers=actors["operator"].headers,
    )
    assert response.status == 200
    # A second app over the same state folder: what a restart sees.
    again = await make_client()
    engine = again.app[keys.SERVICES].dispatcher._engine  # the engine's own view, for this test
    assert set(engine.queues) == {queue["id"]}
    assert engine.queues[queue["id"]].config.members == (
        Member(ops["1001"]["id"], 0),
        Member(ops["1002"]["id"], 0),
    )
    assert engine.operators[ops["1001"]["id"]].profile.presence is Presence.ONLINE
    assert engine.operators[ops["1002"]["id"]].profile.presence is Presence.OFFLINE

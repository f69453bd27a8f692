"""Calls routed by the daemon itself, on the real Asterisk with sipp phones and callers.

Each test runs a fresh daemon (its own SQLite file) against the session's Asterisk, sets up
operators and a queue through the REST API, and asserts both SIP sides, the stored call
records and the events on the bus.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.daemon import Daemon
from tests.eventually import eventually
from tests.sandbox import AsteriskSandbox, Callers, OperatorPhones, PhoneBehaviour

pytestmark = pytest.mark.e2e


async def test_answered_call_is_routed_bridged_and_recorded(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start(
        {"1001": PhoneBehaviour.answer(300, hang_up_after_ms=1500)}
    )
    operator_id = await daemon.operator("1001")
    queue_id = await daemon.queue("support", ["1001"])

    call = await caller.dial(asterisk.queue_number("support"), caller_number="5551234")
    started = await daemon.wait_for_event("call_started")
    answered = await daemon.wait_for_event("call_answered")
    ended = await daemon.wait_for_event("call_ended")
    outcome = await call.outcome(within=20)

    # SIP: the caller was answered and the far end hung up; the phone saw the caller's number.
    assert outcome.exit_code == 0
    assert outcome.answered
    [received] = await phones["1001"].wait_for_calls(1)
    assert received.caller_number == "5551234"
    assert received.answered
    # Events and the stored record agree.
    assert answered["call_id"] == started["call_id"] == ended["call_id"]
    assert answered["operator_id"] == operator_id
    assert ended["status"] == "completed"
    record = await daemon.call_record(started["call_id"], "completed")
    assert record["queue_id"] == queue_id
    assert record["operator_id"] == operator_id
    assert record["caller_number"] == "5551234"
    assert record["answer_time"] is not None and record["end_time"] is not None
    assert record["duration"] >= 1
    assert record["reason"] == "operator_hangup"


async def test_no_answer_then_busy_then_next_operator(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start(
        {
            "1001": PhoneBehaviour.ring_until_cancelled(),
            "1002": PhoneBehaviour.busy(),
            "1003": PhoneBehaviour.answer(200, hang_up_after_ms=800),
        }
    )
    ids = [await daemon.operator(ext) for ext in ("1001", "1002", "1003")]
    await daemon.queue("sales", ["1001", "1002", "1003"], strategy="linear", ring_timeout=2)

    call = await caller.dial(asterisk.queue_number("sales"), caller_number="5550001")
    started = await daemon.wait_for_event("call_started")
    answered = await daemon.wait_for_event("call_answered", within=20)
    outcome = await call.outcome(within=30)

    assert outcome.exit_code == 0 and outcome.answered
    assert answered["operator_id"] == ids[2]
    [rang] = await phones["1001"].wait_for_calls(1)
    assert not rang.answered  # cancelled after the ring timeout
    [refused] = await phones["1002"].wait_for_calls(1)
    assert not refused.answered
    [taken] = await phones["1003"].wait_for_calls(1)
    # Linear: 1001, then 1002, then 1003, in that order.
    assert rang.invited_at < refused.invited_at < taken.invited_at
    record = await daemon.call_record(started["call_id"], "completed")
    assert record["operators_tried"] == ids
    outcomes = [e["data"].get("outcome") for e in record["events"] if e["kind"] == "leg_ended"]
    assert outcomes == ["no_answer", "busy"]


async def test_caller_abandons_while_waiting(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start({"1004": PhoneBehaviour.ring_until_cancelled()})
    await daemon.operator("1004")
    await daemon.queue("billing", ["1004"])

    call = await caller.dial(
        asterisk.queue_number("billing"), caller_number="5550002", hang_up_after_ms=1500
    )
    started = await daemon.wait_for_event("call_started")
    ended = await daemon.wait_for_event("call_ended", within=20)
    outcome = await call.outcome(within=20)

    assert outcome.exit_code == 0
    assert ended == {**ended, "status": "missed", "reason": "abandoned", "duration": 0}
    record = await daemon.call_record(started["call_id"], "missed")
    assert record["reason"] == "abandoned"
    assert record["answer_time"] is None
    await phones["1004"].wait_for_calls(1)
    await phones["1004"].wait_for(lambda calls: calls[0].state.name == "CANCELLED")


async def test_burst_of_calls_none_lost_none_double_answered(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    extensions = ["1005", "1006", "1007", "1008", "1009"]
    phones = await operator_phones.start(
        {ext: PhoneBehaviour.answer(100, hang_up_after_ms=700) for ext in extensions}
    )
    for ext in extensions:
        await daemon.operator(ext)
    await daemon.queue("q1", extensions, strategy="leastrecent", ring_timeout=5)

    numbers = [f"55510{i:02d}" for i in range(20)]
    calls = await caller.burst(asterisk.queue_number("q1"), numbers)
    outcomes = [await c.outcome(within=90) for c in calls]

    assert [o.exit_code for o in outcomes] == [0] * 20
    assert all(o.answered for o in outcomes)
    # Every call was answered by exactly one phone: 20 answers for 20 callers, none twice.
    answered = [c for ext in extensions for c in phones[ext].calls() if c.answered]
    assert len(answered) == 20
    assert sorted(c.caller_number for c in answered) == numbers

    async def all_completed() -> Any:
        listing = await daemon.api("GET", "/api/calls/?limit=100")
        completed = sum(item["status"] == "completed" for item in listing["items"])
        assert completed == 20, listing
        return listing

    listing = await eventually(all_completed, within=10)
    assert listing["total"] == 20
    assert sorted(item["caller_number"] for item in listing["items"]) == numbers
    assert {item["status"] for item in listing["items"]} == {"completed"}


async def test_asterisk_live_data_and_channel_actions(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start({"1010": PhoneBehaviour.answer(100)})  # talks on
    await daemon.operator("1010")
    await daemon.queue("vip", ["1010"])

    extensions = await daemon.api("GET", "/api/asterisk/extensions")
    mine = next(e for e in extensions if e["extension"] == "1010")
    assert mine["technology"] == "PJSIP"
    assert mine["contact_status"] == "Reachable"

    call = await caller.dial(asterisk.queue_number("vip"), caller_number="5550303")
    started = await daemon.wait_for_event("call_started")
    await daemon.wait_for_event("call_answered")

    # The answer is recorded when the phone answers; the bridge is built a moment later.
    async def bridged() -> Any:
        live = await daemon.api("GET", "/api/asterisk/realtime-data")
        assert live["connected"] is True
        assert live["active_calls"] == 1, live
        return live

    live = await eventually(bridged)
    channel = next(c for c in live["channels"] if c["id"] == started["channel_id"])
    assert channel["caller_number"] == "5550303"
    assert channel["state"] == "Up"

    missing = await daemon.client.post(
        "/api/asterisk/channels/no-such-channel/hangup", headers=daemon.headers
    )
    assert missing.status == 404
    assert (await missing.json())["code"] == "AST_005"

    # An admin hanging up the caller from the API ends the call for both sides.
    await daemon.api("POST", f"/api/asterisk/channels/{started['channel_id']}/hangup")
    ended = await daemon.wait_for_event("call_ended")
    assert ended["status"] == "completed" and ended["reason"] == "caller_hangup"
    outcome = await call.outcome(within=20)
    assert outcome.exit_code == 0
    await phones["1010"].wait_for(lambda calls: calls[0].state.name == "COMPLETED")


async def test_unreachable_phone_makes_its_operator_offline_and_skipped(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start(
        {
            "1011": PhoneBehaviour.unreachable(),
            "1012": PhoneBehaviour.answer(100, hang_up_after_ms=500),
        }
    )
    dead = await daemon.operator("1011")
    alive = await daemon.operator("1012")
    await daemon.queue("q2", ["1011", "1012"], strategy="linear")

    # The endpoint's state (qualify) reaches the engine: the operator shows offline.
    async def dead_offline() -> dict[str, str]:
        listing = await daemon.api("GET", "/api/operators/")
        status = {op["id"]: op["status"] for op in listing}
        assert status[dead] == "offline", status
        return status

    status = await eventually(dead_offline)
    assert status[alive] == "online"

    call = await caller.dial(asterisk.queue_number("q2"), caller_number="5550404")
    answered = await daemon.wait_for_event("call_answered")
    assert (await call.outcome(within=20)).exit_code == 0
    assert answered["operator_id"] == alive
    record = await daemon.call_record(answered["call_id"], "completed")
    assert record["operators_tried"] == [alive]  # linear would have tried 1011 first
    assert phones["1011"].calls() == []

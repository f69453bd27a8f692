"""ARI down, AMI up: Asterisk's own Queue() serves the caller and the daemon still records it.

The daemon's ARI points at a closed port (make_settings), so no Stasis app is registered and
the dialplan falls back to `Queue(${QUEUE})`, whose members are the operator phones. The AMI
link follows the queue events into call records (`routed_by` ami), timeline and bus events.
"""

from __future__ import annotations

import pytest

from tests.e2e.daemon import Daemon
from tests.sandbox import AsteriskSandbox, Callers, OperatorPhones, PhoneBehaviour

# ARI on a closed port: the Stasis app is never registered, Queue() takes the calls.
pytestmark = [pytest.mark.e2e, pytest.mark.daemon("ami")]


async def test_native_queue_call_is_recorded_through_ami(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    health = await daemon.api("GET", "/api/admin/system/info")
    assert health["ami"]["state"] == "connected"
    assert health["ami"]["asterisk_version"]
    assert health["ari"]["state"] != "connected"

    phones = await operator_phones.start(
        {"1013": PhoneBehaviour.answer(300, hang_up_after_ms=1500)}
    )
    operator_id = await daemon.operator("1013")
    queue_id = await daemon.queue("q3", ["1013"])

    call = await caller.dial(asterisk.queue_number("q3"), caller_number="5550777")
    started = await daemon.wait_for_event("call_started")
    answered = await daemon.wait_for_event("call_answered")
    ended = await daemon.wait_for_event("call_ended")
    outcome = await call.outcome(within=30)

    assert outcome.exit_code == 0 and outcome.answered
    [received] = await phones["1013"].wait_for_calls(1)
    assert received.answered
    assert answered["call_id"] == started["call_id"] == ended["call_id"]
    assert answered["operator_id"] == operator_id
    assert ended["status"] == "completed"
    record = await daemon.call_record(started["call_id"], "completed")
    assert record["routed_by"] == "ami"
    assert record["operator_id"] == operator_id
    assert record["queue_id"] == queue_id
    assert record["caller_number"] == "5550777"
    assert record["called_number"] == asterisk.queue_number("q3")
    assert record["reason"] == "operator_hangup"
    assert record["duration"] >= 1
    assert operator_id in record["operators_tried"]
    kinds = [event["kind"] for event in record["events"]]
    assert kinds[:2] == ["started", "queued"] and kinds[-2:] == ["answered", "ended"]

    listing = await daemon.api("GET", "/api/calls/")
    [item] = [i for i in listing["items"] if i["id"] == started["call_id"]]
    assert item["routed_by"] == "ami"
    assert item["status"] == "completed"
    assert item["operator_id"] == operator_id

    queues = await daemon.api("GET", "/api/asterisk/queues")
    [q3] = [q for q in queues if q["name"] == "q3"]
    assert q3["members_count"] == len(q3["members"]) > 0
    assert q3["completed_calls"] >= 1
    member = next(m for m in q3["members"] if m["interface"] == "PJSIP/1013")
    assert member["calls_taken"] >= 1


async def test_caller_abandoning_the_native_queue_is_missed(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    await operator_phones.start({"1014": PhoneBehaviour.ring_until_cancelled()})
    await daemon.operator("1014")
    await daemon.queue("overflow", ["1014"])

    call = await caller.dial(
        asterisk.queue_number("overflow"), caller_number="5550778", cancel_after_ms=2500
    )
    started = await daemon.wait_for_event("call_started")
    ended = await daemon.wait_for_event("call_ended")
    await call.outcome(within=20)

    assert ended["call_id"] == started["call_id"]
    assert ended["status"] == "missed" and ended["reason"] == "abandoned"
    record = await daemon.call_record(started["call_id"], "missed")
    assert record["routed_by"] == "ami"
    assert record["answer_time"] is None
    assert record["wait_seconds"] is not None


async def test_admin_hangs_up_a_native_queue_call_through_ami(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    await operator_phones.start({"1015": PhoneBehaviour.answer(100)})  # talks on
    await daemon.operator("1015")
    await daemon.queue("vip", ["1015"])

    call = await caller.dial(asterisk.queue_number("vip"), caller_number="5550779")
    started = await daemon.wait_for_event("call_started")
    await daemon.wait_for_event("call_answered")

    missing = await daemon.client.post(
        "/api/asterisk/channels/no-such-channel/hangup", headers=daemon.headers
    )
    assert missing.status == 404
    assert (await missing.json())["code"] == "AST_005"
    # ARI is down: the hang-up goes through AMI, by the channel's id (its Uniqueid).
    await daemon.api("POST", f"/api/asterisk/channels/{started['channel_id']}/hangup")
    ended = await daemon.wait_for_event("call_ended")
    assert ended["call_id"] == started["call_id"]
    assert ended["status"] == "completed" and ended["reason"] == "caller_hangup"
    assert (await call.outcome(within=20)).exit_code == 0


async def test_originate_goes_through_ami_while_ari_is_down(
    daemon: Daemon, operator_phones: OperatorPhones
) -> None:
    phones = await operator_phones.start({"1016": PhoneBehaviour.answer(100, hang_up_after_ms=500)})
    answer = await daemon.api(
        "POST",
        "/api/asterisk/originate",
        {"endpoint": "PJSIP/1016", "context": "operators", "extension": "1017", "timeout": 10},
    )
    assert answer["success"] is True and answer["channel_id"]
    [received] = await phones["1016"].wait_for_calls(1)
    assert received.answered

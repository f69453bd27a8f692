"""Hold and transfers on the real Asterisk with sipp phones and callers (issue 11, parts 1-2).

Each test checks both SIP sides (what the caller's and the phones' sipp saw), the stored
record (status, legs, timeline, hold time) and the events on the bus; music on hold is
checked as Asterisk itself reports it over AMI (MusicOnHoldStart / MusicOnHoldStop on the
caller's channel).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.ami_watch import ami_watch, moh
from tests.e2e.ari_watch import AriWatch
from tests.e2e.daemon import Daemon
from tests.eventually import eventually
from tests.sandbox import AsteriskSandbox, Callers, OperatorPhones, PhoneBehaviour
from tests.sandbox.config import OUTSIDE_PHONE
from tests.sandbox.phones import PhoneCallState
from tests.sandbox.sipp import Side, parse_message_log

pytestmark = pytest.mark.e2e

TALKS_ON = PhoneBehaviour.answer(200)  # answers, then talks until the far end hangs up


def kinds(record: dict[str, Any]) -> list[str]:
    return [event["kind"] for event in record["events"]]


async def timeline_has(daemon: Daemon, call_id: str, kind: str) -> dict[str, Any]:
    async def present() -> dict[str, Any]:
        record: dict[str, Any] = await daemon.api("GET", f"/api/calls/{call_id}")
        assert kind in kinds(record), kinds(record)
        return record

    return await eventually(present, within=10)


async def talking_call(
    daemon: Daemon, asterisk: AsteriskSandbox, caller: Callers, queue: str, number: str
) -> tuple[Any, dict[str, Any]]:
    """A caller dials `queue` and its first operator answers; answers (sipp call, started)."""
    call = await caller.dial(asterisk.queue_number(queue), caller_number=number)
    started = await daemon.wait_for_event("call_started")
    await daemon.wait_for_event("call_answered")
    return call, started


async def hang_up_caller(daemon: Daemon, started: dict[str, Any]) -> dict[str, Any]:
    await daemon.api("POST", f"/api/asterisk/channels/{started['channel_id']}/hangup")
    return await daemon.wait_for_event("call_ended")


def answered_legs(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {leg["operator_id"]: leg for leg in record["legs"] if leg["answered_at"]}


async def two_operators(
    daemon: Daemon,
    operator_phones: OperatorPhones,
    extensions: tuple[str, str],
    target_phone: PhoneBehaviour = TALKS_ON,
) -> tuple[dict[str, Any], str, str]:
    """Two phones and their operators; queue support has the first only. Answers (phones,
    first operator id, second operator id)."""
    one, two = extensions
    phones = await operator_phones.start({one: TALKS_ON, two: target_phone})
    first, second = await daemon.operator(one), await daemon.operator(two)
    await daemon.queue("support", [one])
    return phones, first, second


async def handed_over(
    daemon: Daemon, call: Any, started: dict[str, Any], first: str, second: str
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Hang the caller up after a blind transfer from `first` to `second`; check both SIP ends
    of the caller and the stored hand-over. Answers the record and its answered legs."""
    ended = await hang_up_caller(daemon, started)
    assert ended["status"] == "completed"
    outcome = await call.outcome(within=20)
    assert outcome.exit_code == 0 and outcome.answered and outcome.hung_up_by is Side.FAR_END
    record = await daemon.call_record(started["call_id"], "completed")
    assert record["operator_id"] == second
    legs = answered_legs(record)
    assert (legs[first]["outcome"], legs[second]["outcome"]) == ("transferred", "caller_hangup")
    return record, legs


async def test_hold_and_unhold_play_music_to_the_caller(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start({"1001": TALKS_ON})
    operator = await daemon.operator("1001")
    await daemon.queue("support", ["1001"])
    async with ami_watch(asterisk) as ami:
        call, started = await talking_call(daemon, asterisk, caller, "support", "5556001")
        channel, call_id = started["channel_id"], started["call_id"]
        # Waiting in the queue played music once; it stopped when the operator answered.
        await ami.wait_for(moh("MusicOnHoldStop", channel))
        before = ami.count(moh("MusicOnHoldStart", channel))

        held = await daemon.api("POST", f"/api/calls/{call_id}/hold")
        assert kinds(held)[-1] == "held"
        assert (await daemon.wait_for_event("call_held"))["operator_id"] == operator
        await eventually(lambda: ami.count(moh("MusicOnHoldStart", channel)) == before + 1)
        refused = await daemon.client.post(f"/api/calls/{call_id}/hold", headers=daemon.headers)
        assert (refused.status, (await refused.json())["code"]) == (409, "CALL_002")

        stops = ami.count(moh("MusicOnHoldStop", channel))
        await daemon.api("POST", f"/api/calls/{call_id}/unhold")
        unheld = await daemon.wait_for_event("call_unheld")
        assert unheld["hold_seconds"] > 0
        await eventually(lambda: ami.count(moh("MusicOnHoldStop", channel)) == stops + 1)
        ended = await hang_up_caller(daemon, started)

    assert ended["status"] == "completed"
    outcome = await call.outcome(within=20)
    assert outcome.exit_code == 0 and outcome.answered and outcome.hung_up_by is Side.FAR_END
    [received] = await phones["1001"].wait_for_calls(1)
    assert received.answered and received.state is PhoneCallState.COMPLETED
    record = await daemon.call_record(call_id, "completed")
    assert record["hold_seconds"] == pytest.approx(unheld["hold_seconds"], abs=0.01)
    assert [k for k in kinds(record) if k in ("held", "unheld")] == ["held", "unheld"]
    [leg] = record["legs"]
    assert leg["operator_id"] == operator and leg["outcome"] == "caller_hangup"
    assert leg["hold_seconds"] == pytest.approx(record["hold_seconds"], abs=0.01)


async def test_blind_transfer_to_an_operator(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones, first, second = await two_operators(daemon, operator_phones, ("1001", "1002"))
    call, started = await talking_call(daemon, asterisk, caller, "support", "5556002")
    call_id = started["call_id"]

    target = {"target": {"type": "operator", "id": second}, "mode": "blind"}
    await daemon.api("POST", f"/api/calls/{call_id}/transfer", target)
    transferred = await daemon.wait_for_event("call_transferred")
    assert (transferred["operator_id"], transferred["target_id"]) == (first, second)
    answered = await daemon.wait_for_event("call_answered")
    assert answered["operator_id"] == second
    # The first phone was hung up by Asterisk; the second rang with the caller's number.
    await phones["1001"].wait_for(lambda calls: calls[0].state is PhoneCallState.COMPLETED)
    assert phones["1001"].calls()[0].hung_up_by is Side.FAR_END
    [rung] = await phones["1002"].wait_for(lambda calls: len(calls) == 1 and calls[0].answered)
    assert rung.caller_number == "5556002" and rung.answered
    record, legs = await handed_over(daemon, call, started, first, second)
    assert legs[first]["talk_seconds"] > 0 and legs[second]["talk_seconds"] > 0
    assert "transferred" in kinds(record)


async def test_blind_transfer_to_a_queue(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones, first, second = await two_operators(daemon, operator_phones, ("1003", "1004"))
    sales = await daemon.queue("sales", ["1004"])
    call, started = await talking_call(daemon, asterisk, caller, "support", "5556003")
    call_id = started["call_id"]

    target = {"target": {"type": "queue", "id": sales}}
    await daemon.api("POST", f"/api/calls/{call_id}/transfer", target)
    transferred = await daemon.wait_for_event("call_transferred")
    assert (transferred["target_type"], transferred["target_id"]) == ("queue", sales)
    queued = await daemon.wait_for_event("call_queued")
    assert queued["queue_id"] == sales and queued["position"] == 1
    assert (await daemon.wait_for_event("call_answered"))["operator_id"] == second
    await phones["1003"].wait_for(lambda calls: calls[0].state is PhoneCallState.COMPLETED)
    [rung] = await phones["1004"].wait_for(lambda calls: len(calls) == 1 and calls[0].answered)
    assert rung.answered and rung.caller_number == "5556003"
    await hang_up_caller(daemon, started)

    outcome = await call.outcome(within=20)
    assert outcome.exit_code == 0 and outcome.answered
    record = await daemon.call_record(call_id, "completed")
    assert record["queue_id"] == sales and record["operator_id"] == second
    moves = [e["data"] for e in record["events"] if e["kind"] == "queued"]
    assert [m.get("moved_from") for m in moves][-1] is not None
    assert answered_legs(record)[first]["outcome"] == "transferred"


async def consulted(daemon: Daemon, call_id: str, target: str) -> dict[str, Any]:
    body = {"target": {"type": "operator", "id": target}, "mode": "attended"}
    await daemon.api("POST", f"/api/calls/{call_id}/transfer", body)
    return await daemon.wait_for_event("call_transfer_started")


async def test_attended_transfer_completed(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones, first, second = await two_operators(daemon, operator_phones, ("1005", "1006"))
    async with ami_watch(asterisk) as ami:
        call, started = await talking_call(daemon, asterisk, caller, "support", "5556004")
        call_id, channel = started["call_id"], started["channel_id"]
        await ami.wait_for(moh("MusicOnHoldStop", channel))
        starts = ami.count(moh("MusicOnHoldStart", channel))
        begun = await consulted(daemon, call_id, second)
        assert begun["mode"] == "attended" and begun["operator_id"] == first
        # The caller hears music while the operator consults.
        await eventually(lambda: ami.count(moh("MusicOnHoldStart", channel)) == starts + 1)
        await timeline_has(daemon, call_id, "consult_answered")
        # Both phones talk, the caller is still held; the first phone is still up.
        assert phones["1005"].calls()[0].state is PhoneCallState.TALKING
        stops = ami.count(moh("MusicOnHoldStop", channel))
        await daemon.api("POST", f"/api/calls/{call_id}/transfer/complete")
        done = await daemon.wait_for_event("call_transferred")
        assert (done["mode"], done["operator_id"], done["target_id"]) == ("attended", first, second)
        # The music stops: the caller joins the consulted operator.
        await eventually(lambda: ami.count(moh("MusicOnHoldStop", channel)) == stops + 1)
        await phones["1005"].wait_for(lambda calls: calls[0].state is PhoneCallState.COMPLETED)
        assert phones["1005"].calls()[0].hung_up_by is Side.FAR_END
        assert phones["1006"].calls()[0].state is PhoneCallState.TALKING
        await hang_up_caller(daemon, started)

    outcome = await call.outcome(within=20)
    assert outcome.exit_code == 0 and outcome.answered and outcome.hung_up_by is Side.FAR_END
    await phones["1006"].wait_for(lambda calls: calls[0].state is PhoneCallState.COMPLETED)
    record = await daemon.call_record(call_id, "completed")
    assert record["operator_id"] == second and record["hold_seconds"] > 0
    legs = answered_legs(record)
    assert legs[first]["outcome"] == "transferred"
    assert legs[first]["hold_seconds"] == pytest.approx(record["hold_seconds"], abs=0.01)
    assert legs[second]["outcome"] == "caller_hangup"
    assert [k for k in kinds(record) if "transfer" in k or k == "consult_answered"] == [
        "transfer_started",
        "consult_answered",
        "transferred",
    ]


async def test_attended_transfer_cancelled(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones, first, second = await two_operators(daemon, operator_phones, ("1007", "1008"))
    async with ami_watch(asterisk) as ami:
        call, started = await talking_call(daemon, asterisk, caller, "support", "5556005")
        call_id, channel = started["call_id"], started["channel_id"]
        await consulted(daemon, call_id, second)
        await timeline_has(daemon, call_id, "consult_answered")
        stops = ami.count(moh("MusicOnHoldStop", channel))
        await daemon.api("POST", f"/api/calls/{call_id}/transfer/cancel")
        failed = await daemon.wait_for_event("call_transfer_failed")
        assert failed["reason"] == "cancelled"
        await eventually(lambda: ami.count(moh("MusicOnHoldStop", channel)) == stops + 1)
        # The consulted phone was hung up; the first one talks with the caller again.
        await phones["1008"].wait_for(lambda calls: calls[0].state is PhoneCallState.COMPLETED)
        assert phones["1008"].calls()[0].hung_up_by is Side.FAR_END
        assert phones["1007"].calls()[0].state is PhoneCallState.TALKING
        await hang_up_caller(daemon, started)

    outcome = await call.outcome(within=20)
    assert outcome.exit_code == 0 and outcome.answered
    record = await daemon.call_record(call_id, "completed")
    assert record["operator_id"] == first
    legs = answered_legs(record)
    assert legs[second]["outcome"] == "cancelled"
    assert legs[first]["outcome"] == "caller_hangup"


async def test_attended_transfer_refused_by_the_target(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones, first, second = await two_operators(
        daemon, operator_phones, ("1009", "1010"), PhoneBehaviour.busy()
    )
    async with ami_watch(asterisk) as ami:
        call, started = await talking_call(daemon, asterisk, caller, "support", "5556006")
        call_id, channel = started["call_id"], started["channel_id"]
        await ami.wait_for(moh("MusicOnHoldStop", channel))  # the queue's music, when answered
        stops = ami.count(moh("MusicOnHoldStop", channel))
        await consulted(daemon, call_id, second)
        failed = await daemon.wait_for_event("call_transfer_failed")
        assert (failed["reason"], failed["target_id"]) == ("busy", second)
        # Held for the consultation, then given back: one more start and stop of the music.
        await eventually(lambda: ami.count(moh("MusicOnHoldStop", channel)) == stops + 1)
        assert ami.count(moh("MusicOnHoldStart", channel)) == stops + 1
        [refused] = await phones["1010"].wait_for_calls(1)
        assert refused.state is PhoneCallState.REJECTED and not refused.answered
        assert phones["1009"].calls()[0].state is PhoneCallState.TALKING
        await hang_up_caller(daemon, started)

    outcome = await call.outcome(within=20)
    assert outcome.exit_code == 0 and outcome.answered
    record = await daemon.call_record(call_id, "completed")
    assert record["operator_id"] == first
    assert "transfer_failed" in kinds(record)
    outcomes = {leg["operator_id"]: leg["outcome"] for leg in record["legs"]}
    assert outcomes == {first: "caller_hangup", second: "busy"}


async def test_blind_transfer_to_an_external_number_leaves_through_the_dialplan(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    """The sandbox's external context dials numbers towards phone 1020's sipp (as a provider
    would be reached): the caller talks on with the outside, the record ends `transferred`."""
    phones = await operator_phones.start({"1013": TALKS_ON, OUTSIDE_PHONE: TALKS_ON})
    first = await daemon.operator("1013")
    await daemon.queue("support", ["1013"])
    call = await caller.dial(
        asterisk.queue_number("support"), caller_number="5556009", hang_up_after_ms=4000
    )
    started = await daemon.wait_for_event("call_started")
    await daemon.wait_for_event("call_answered")
    target = {"target": {"type": "external", "number": "5559000"}, "mode": "blind"}
    await daemon.api("POST", f"/api/calls/{started['call_id']}/transfer", target)
    transferred = await daemon.wait_for_event("call_transferred")
    assert (transferred["mode"], transferred["target_type"]) == ("blind", "external")
    assert transferred["target_id"] == "5559000"
    ended = await daemon.wait_for_event("call_ended")
    assert (ended["status"], ended["reason"]) == ("completed", "transferred")
    # The outside got the number in its request URI with the caller's number, and answered.
    [outside] = await phones[OUTSIDE_PHONE].wait_for(
        lambda calls: len(calls) == 1 and calls[0].answered
    )
    assert outside.caller_number == "5556009"
    invite = next(
        m
        for m in parse_message_log(phones[OUTSIDE_PHONE].logs.messages)
        if m.is_request("INVITE", sent=False)
    )
    assert invite.start_line.startswith("INVITE sip:5559000@")
    # The operator's phone was hung up; the caller talked on until it hung up itself.
    [rung] = await phones["1013"].wait_for(lambda calls: calls[0].state.is_final)
    assert rung.state is PhoneCallState.COMPLETED and rung.hung_up_by is Side.FAR_END
    outcome = await call.outcome(within=20)
    assert outcome.exit_code == 0 and outcome.hung_up_by is Side.THIS_END
    [after] = await phones[OUTSIDE_PHONE].wait_for(lambda calls: calls[0].state.is_final)
    assert after.hung_up_by is Side.FAR_END
    record = await daemon.call_record(started["call_id"], "completed")
    assert record["reason"] == "transferred" and record["operator_id"] == first
    [leg] = record["legs"]
    assert (leg["operator_id"], leg["outcome"]) == (first, "transferred")
    transfer = next(e for e in record["events"] if e["kind"] == "transferred")
    assert transfer["data"]["target_type"] == "external"


async def test_blind_transfer_from_the_operators_phone_by_refer(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    refer_to = f"sip:1012@{asterisk.sip_host}:{asterisk.sip_port}"
    phones = await operator_phones.start(
        {"1011": PhoneBehaviour.transfer(refer_to, 100, 800), "1012": TALKS_ON}
    )
    first, second = await daemon.operator("1011"), await daemon.operator("1012")
    await daemon.queue("support", ["1011"])
    call, started = await talking_call(daemon, asterisk, caller, "support", "5556007")

    transferred = await daemon.wait_for_event("call_transferred")
    assert transferred["mode"] == "phone"
    assert (transferred["operator_id"], transferred["target_id"]) == (first, second)
    answered = await daemon.wait_for_event("call_answered")
    assert answered["operator_id"] == second
    # The transferring phone sent REFER, got 202 and both NOTIFYs, then hung up its part (sipp's
    # scenario fails otherwise); the target rang with the caller's number and answered.
    [sent] = await phones["1011"].wait_for_calls(1)
    assert sent.answered and sent.state is PhoneCallState.COMPLETED
    assert sent.hung_up_by is Side.THIS_END
    trace = parse_message_log(phones["1011"].logs.messages)
    assert any(m.is_request("REFER", sent=True) for m in trace)
    assert any(m.is_response(202, "REFER", sent=False) for m in trace)
    assert sum(m.is_request("NOTIFY", sent=False) for m in trace) >= 2
    [rung] = await phones["1012"].wait_for(lambda calls: len(calls) == 1 and calls[0].answered)
    assert rung.caller_number == "5556007"
    record, legs = await handed_over(daemon, call, started, first, second)
    assert legs[second]["talk_seconds"] > 0
    assert record["operators_tried"] == [first, second]


async def test_attended_transfer_from_the_operators_phone(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    """The operator's phone consults 1012 itself (a call of its own through the dialplan), then
    transfers with REFER + Replaces: Asterisk links the caller's bridge to the consultation
    (BridgeAttendedTransfer, a Local channel pair) and the target has the call at once."""
    consult_uri = f"sip:1012@{asterisk.sip_host}:{asterisk.sip_port}"
    phones = await operator_phones.start(
        {"1011": PhoneBehaviour.attended_transfer("1011", consult_uri, 300, 1500), "1012": TALKS_ON}
    )
    first, second = await daemon.operator("1011"), await daemon.operator("1012")
    await daemon.queue("support", ["1011"])
    async with AriWatch(asterisk) as ari:
        call, started = await talking_call(daemon, asterisk, caller, "support", "5556008")
        done = await ari.event("BridgeAttendedTransfer", within=15)
    assert (done["result"], done["destination_type"]) == ("Success", "link")
    assert done["transferee"]["id"] == started["channel_id"]

    transferred = await daemon.wait_for_event("call_transferred")
    assert transferred["mode"] == "phone"
    assert (transferred["operator_id"], transferred["target_id"]) == (first, second)
    answered = await daemon.wait_for_event("call_answered")
    assert answered["operator_id"] == second
    # The transferring phone placed the consultation (answered by 1012, with 1011's number),
    # sent REFER with Replaces, got 202 and the NOTIFYs, and both of its calls were hung up.
    trace = parse_message_log(phones["1011"].logs.messages)
    assert any(m.is_request("INVITE", sent=True) for m in trace)
    refer = next(m for m in trace if m.is_request("REFER", sent=True))
    assert "Replaces=" in refer.headers["refer-to"]
    assert any(m.is_response(202, "REFER", sent=False) for m in trace)
    assert any(m.is_request("NOTIFY", sent=False) for m in trace)
    [consulted] = await phones["1012"].wait_for(lambda calls: len(calls) == 1 and calls[0].answered)
    assert consulted.caller_number == "1011"
    # The consultation's 1012 talks on with the caller until the caller hangs up.
    record = await timeline_has(daemon, started["call_id"], "transferred")
    assert record["operator_id"] == second and record["status"] == "answered"
    record, legs = await handed_over(daemon, call, started, first, second)
    assert legs[second]["rung_at"] == legs[second]["answered_at"]  # consulted: no ringing
    assert legs[first]["talk_seconds"] >= 1.5  # the consultation counts for the first
    assert record["operators_tried"] == [first, second]
    [after] = await phones["1012"].wait_for(lambda calls: calls[0].state.is_final)
    assert after.state is PhoneCallState.COMPLETED and after.hung_up_by is Side.FAR_END

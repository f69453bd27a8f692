"""The waiting caller on the real Asterisk: what they hear while waiting, and their priority.

What the caller hears is what Asterisk reports playing to the caller's channel (ARI
PlaybackStarted / PlaybackContinuing / PlaybackFinished, watched by a second ARI application
subscribed to everything); the SIP sides are sipp's.
"""

from __future__ import annotations

import pytest

from tests.e2e.ari_watch import AriWatch, playback_on
from tests.e2e.daemon import Daemon
from tests.sandbox import AsteriskSandbox, Callers, OperatorPhones, PhoneBehaviour

pytestmark = pytest.mark.e2e


async def test_greeting_then_place_in_line_cut_short_when_an_operator_answers(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start(
        {"1001": PhoneBehaviour.answer(100, hang_up_after_ms=1000)}
    )
    operator_id = await daemon.operator("1001")
    await daemon.api("PUT", f"/api/operators/{operator_id}/status", {"status": "offline"})
    await daemon.queue("support", ["1001"], greeting="queue-periodic-announce", announce_every=3)

    async with AriWatch(asterisk) as ari:
        call = await caller.dial(asterisk.queue_number("support"), caller_number="5557001")
        started = await daemon.wait_for_event("call_started")
        to_caller = playback_on(started["channel_id"])
        greeting = await ari.event("PlaybackStarted", to_caller)
        assert greeting["playback"]["media_uri"] == "sound:queue-periodic-announce"
        # Nobody serves the queue: the place, and no estimate of the wait.
        place = await ari.event("PlaybackStarted", to_caller, within=20)
        assert place["playback"]["media_uri"] == "sound:queue-youarenext"
        place_id = place["playback"]["id"]

        # An operator comes online while "you are next" plays (about 5 s of it).
        await daemon.api("PUT", f"/api/operators/{operator_id}/status", {"status": "online"})
        answered = await daemon.wait_for_event("call_answered")
        finished = await ari.event("PlaybackFinished", lambda e: e["playback"]["id"] == place_id)
        outcome = await call.outcome(within=20)

    # Cut in its first prompt: it never went on to "thank you for your patience".
    assert finished["playback"]["media_uri"] == "sound:queue-youarenext"
    continued = [
        e for e in ari.seen if e["type"] == "PlaybackContinuing" and e["playback"]["id"] == place_id
    ]
    assert continued == []
    # Told once at the head of the line, however long they waited there.
    told = [e for e in ari.seen if e["type"] == "PlaybackStarted" and to_caller(e)]
    assert [e["playback"]["media_uri"] for e in told] == [
        "sound:queue-periodic-announce",
        "sound:queue-youarenext",
    ]
    # Both SIP sides, and the record.
    assert outcome.exit_code == 0 and outcome.answered
    [received] = await phones["1001"].wait_for_calls(1)
    assert received.caller_number == "5557001" and received.answered
    assert answered["operator_id"] == operator_id
    record = await daemon.call_record(started["call_id"], "completed")
    assert record["operator_id"] == operator_id


@pytest.mark.parametrize("how", ["dialplan", "vip list"])
async def test_a_priority_caller_is_served_before_one_who_came_earlier(
    daemon: Daemon,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
    how: str,
) -> None:
    # One operator, each call 2.5 s long. 5000 reaches sales; 5001 sales with priority 10
    # (the shipped extensions.conf sets CALLCENTERD_PRIORITY on that line); or the third
    # caller's number is on the VIP list.
    phones = await operator_phones.start(
        {"1002": PhoneBehaviour.answer(100, hang_up_after_ms=2500)}
    )
    await daemon.operator("1002")
    await daemon.queue("sales", ["1002"])
    vip_line = "5001" if how == "dialplan" else "5000"
    if how == "vip list":
        await daemon.api("PUT", "/api/vip-callers/+5558003", {"priority": 10})

    first = await caller.dial("5000", caller_number="5558001")
    await daemon.wait_for_event("call_answered")
    earlier = await caller.dial("5000", caller_number="5558002")
    earlier_call = await daemon.wait_for_event("call_queued")
    vip = await caller.dial(vip_line, caller_number="5558003")
    vip_call = await daemon.wait_for_event("call_queued")
    assert vip_call["position"] == 1 and earlier_call["position"] == 1

    for sipp_call in (first, earlier, vip):
        outcome = await sipp_call.outcome(within=30)
        assert outcome.exit_code == 0 and outcome.answered
    received = await phones["1002"].wait_for_calls(3)
    assert [r.caller_number for r in received] == ["5558001", "5558003", "5558002"]
    earlier_record = await daemon.call_record(earlier_call["call_id"], "completed")
    vip_record = await daemon.call_record(vip_call["call_id"], "completed")
    assert vip_record["answer_time"] < earlier_record["answer_time"]
    assert vip_record["wait_seconds"] < earlier_record["wait_seconds"]

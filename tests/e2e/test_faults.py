"""Faults with calls in progress: the daemon killed or stopped, Asterisk restarted, the ARI
events WebSocket cut. After each, no call record is lost or left open, both SIP sides end
cleanly, and new calls route again.

The daemon runs as a subprocess (tests/e2e/daemon_process.py) for the kill, stop and Asterisk
restart tests, on one state folder across its restarts. The WebSocket cut uses the in-process
daemon (the `daemon` fixture: bus events, link state) and cuts the TCP connection itself with the
kernel's socket destroy (`ss -K` on Asterisk's HTTP port): no daemon internals are touched, the
daemon's side reads ECONNABORTED and Asterisk's an RST, as on a real network fault.

What reconciliation must do (the daemon, at start and on every ARI (re)connect): re-adopt calls
still in the Stasis app (a waiting caller keeps its place, a talking call its operator), hang up
channels it cannot account for, and close every open record whose channel is gone —
`completed` if answered, else `missed` with reason `lost` — with a `reconciled` timeline entry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest

from callcenterd import keys
from tests.e2e.ami_watch import ami_watch, moh
from tests.e2e.daemon import Daemon
from tests.e2e.daemon_process import (
    FINAL_STATUSES,
    DaemonProcess,
    cut_ari_connections,
    settled_calls,
    timeline_kinds,
    wait_app,
)
from tests.eventually import eventually
from tests.sandbox import AsteriskSandbox, Callers, OperatorPhones, PhoneBehaviour
from tests.sandbox.callers import CallerCall, CallerOutcome
from tests.sandbox.phones import OperatorPhone, PhoneCallState, ReceivedCall

pytestmark = pytest.mark.e2e

# Longest a caller may stay up on its own: every call ends by then even if nobody hangs it up,
# so a stuck channel shows as a stuck record, not as a hung test.
CALLER_LIMIT_MS = 40_000
SIGTERM_BOUND_S = 15.0
APP_BACK_BOUND_S = 2.0


# ---- helpers ---------------------------------------------------------------------------------


async def record_status(proc: DaemonProcess, caller_number: str, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any]:
        items = await proc.calls()
        for item in items:
            if item["caller_number"] == caller_number and item["status"] == status:
                return item
        raise AssertionError(f"no {status} record of {caller_number}: {items}")

    found: dict[str, Any] = await eventually(check, 15.0, f"{caller_number} {status}")
    return found


async def talking(phone: OperatorPhone, caller_number: str, within: float = 15.0) -> None:
    await phone.wait_for(
        lambda calls: any(
            c.caller_number == caller_number and c.state is PhoneCallState.TALKING for c in calls
        ),
        within,
    )


def calls_from(phone: OperatorPhone, caller_number: str) -> list[ReceivedCall]:
    return [c for c in phone.calls() if c.caller_number == caller_number]


async def ended_cleanly(call: CallerCall, within: float = 60.0) -> CallerOutcome:
    """The caller's sipp finished its scenario (exit 0): answered, then a BYE either way."""
    outcome = await call.outcome(within=within)
    assert outcome.exit_code == 0, f"caller {call.logs.messages}: {outcome}"
    return outcome


def assert_closed_properly(record: Mapping[str, Any]) -> None:
    """A final record: `completed` iff answered; one closed for want of a channel (reason
    `lost`: `completed` if answered, else `missed`) has a `reconciled` timeline entry."""
    assert record["status"] in FINAL_STATUSES, record
    assert record["end_time"] is not None, record
    if record["status"] == "completed":
        assert record["answer_time"] is not None, record
    else:
        assert record["answer_time"] is None, record
    if record["reason"] == "lost":  # closed by reconciliation: it says so in the timeline
        assert "reconciled" in timeline_kinds(record), record


async def waiting_in_queue(proc: DaemonProcess, caller_number: str) -> None:
    """The caller's record shows it queued (the daemon answered it and plays music)."""

    async def check() -> bool:
        for item in await proc.calls():
            if item["caller_number"] == caller_number and item["queue_id"] is not None:
                return True
        return False

    await eventually(check, 15.0, f"{caller_number} queued")


# ---- a. SIGKILL mid-conversation -------------------------------------------------------------


async def test_daemon_killed_mid_conversation_then_restarted(
    proc: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
) -> None:
    phones = await operator_phones.start(
        {
            "1001": PhoneBehaviour.answer(200, hang_up_after_ms=8000),
            "1002": PhoneBehaviour.answer(200, hang_up_after_ms=1000),
        }
    )
    op1001 = await proc.operator("1001")
    op1002 = await proc.operator("1002")
    await proc.queue("support", ["1001"])
    await proc.queue("sales", ["1002"])

    talk = await caller.dial(
        asterisk.queue_number("support"), "5552001", hang_up_after_ms=CALLER_LIMIT_MS
    )
    await talking(phones["1001"], "5552001")
    wait = await caller.dial(
        asterisk.queue_number("support"), "5552002", hang_up_after_ms=CALLER_LIMIT_MS
    )
    await waiting_in_queue(proc, "5552002")

    await proc.kill()
    await proc.start()
    # A new call right after the restart, beside the re-adopted ones, routes normally.
    fresh = await caller.dial(asterisk.queue_number("sales"), "5552003", hang_up_after_ms=5000)

    # The talking call goes on (its operator hangs up at 8 s) or was ended: never stuck.
    talk_outcome = await ended_cleanly(talk)
    assert talk_outcome.answered
    [first] = calls_from(phones["1001"], "5552001")
    await phones["1001"].wait_for(lambda _: calls_from(phones["1001"], "5552001")[0].state.is_final)
    assert first.answered

    # The waiting caller is answered by 1001 once free, or was cleanly ended.
    wait_outcome = await ended_cleanly(wait)
    waited = calls_from(phones["1001"], "5552002")
    assert len(waited) <= 1  # never rung twice for one call
    if waited:
        await phones["1001"].wait_for(
            lambda _: calls_from(phones["1001"], "5552002")[0].state.is_final
        )
        assert calls_from(phones["1001"], "5552002")[0].state is PhoneCallState.COMPLETED

    fresh_outcome = await ended_cleanly(fresh, within=20)
    assert fresh_outcome.answered
    [rung] = calls_from(phones["1002"], "5552003")
    assert rung.answered

    records = {c["caller_number"]: c for c in await proc.settled_calls(3, within=30)}
    details = {number: await proc.call(c["id"]) for number, c in records.items()}
    for record in details.values():
        assert_closed_properly(record)
    assert details["5552001"]["status"] == "completed"
    assert details["5552001"]["operator_id"] == op1001
    if waited:
        assert details["5552002"]["status"] == "completed"
        assert details["5552002"]["operator_id"] == op1001
    else:
        assert details["5552002"]["status"] == "missed", details["5552002"]
        assert wait_outcome.hung_up_by is not None
    assert details["5552003"]["status"] == "completed"
    assert details["5552003"]["operator_id"] == op1002
    assert await asyncio.to_thread(asterisk.active_channel_count) == 0


async def held_call(
    proc: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
    number: str,
) -> tuple[dict[str, OperatorPhone], str, CallerCall, dict[str, Any]]:
    """A caller answered by 1003 in queue sales, then put on hold: (phones, 1003's operator
    id, the caller's call, its record)."""
    phones = await operator_phones.start({"1003": PhoneBehaviour.answer(200)})
    op1003 = await proc.operator("1003")
    await proc.queue("sales", ["1003"])
    call = await caller.dial(
        asterisk.queue_number("sales"), number, hang_up_after_ms=CALLER_LIMIT_MS
    )
    await talking(phones["1003"], number)
    record = await record_status(proc, number, "answered")
    await proc.api("POST", f"/api/calls/{record['id']}/hold")
    return phones, op1003, call, record


async def test_daemon_killed_with_a_call_on_hold_resumes_it_held(
    proc: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
) -> None:
    phones, op1003, call, record = await held_call(
        proc, asterisk, operator_phones, caller, "5552011"
    )
    await proc.kill()
    await asyncio.sleep(1.0)  # on hold while the daemon is away: counted too
    await proc.start()

    # Taken back on hold: holding again is refused, unholding works and stops the music.
    async def resumed() -> None:
        again = await proc.api("POST", f"/api/calls/{record['id']}/hold", status=409)
        assert again["code"] == "CALL_002"

    await eventually(resumed, 15.0, "resumed on hold")
    async with ami_watch(asterisk) as ami:
        unheld = await proc.api("POST", f"/api/calls/{record['id']}/unhold")
        assert timeline_kinds(unheld)[-1] == "unheld"
        await ami.wait_for(moh("MusicOnHoldStop", record["channel_id"]))
    await proc.api("POST", f"/api/asterisk/channels/{record['channel_id']}/hangup")
    outcome = await ended_cleanly(call)
    assert outcome.answered
    [settled] = await proc.settled_calls(1, within=20)
    detail = await proc.call(settled["id"])
    assert_closed_properly(detail)
    assert (detail["status"], detail["operator_id"]) == ("completed", op1003)
    assert detail["hold_seconds"] >= 1.0  # from the hold before the kill to the unhold
    [leg] = [leg for leg in detail["legs"] if leg["answered_at"]]
    assert leg["hold_seconds"] == detail["hold_seconds"]
    assert len(calls_from(phones["1003"], "5552011")) == 1  # rung once, across the restart
    await phones["1003"].wait_for(lambda _: calls_from(phones["1003"], "5552011")[0].state.is_final)
    assert calls_from(phones["1003"], "5552011")[0].state is PhoneCallState.COMPLETED


async def ari_request(asterisk: AsteriskSandbox, method: str, path: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{asterisk.ari_url}{path}", headers=asterisk.ari_headers) as r,
    ):
        return r.status, (await r.json() if r.content_type == "application/json" else None)


async def test_a_hold_cut_short_by_the_daemons_death_is_finished_at_restart(
    proc: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
) -> None:
    """The hold was answered and recorded, but the daemon died between taking the caller out
    of the conversation and putting it in the holding bridge (seen in CI: kill -9 while those
    requests were in flight). Asterisk is left so by hand here: the caller in no bridge, no
    music. The restart finishes the hold the user was told had happened."""
    phones, op1003, call, record = await held_call(
        proc, asterisk, operator_phones, caller, "5552012"
    )
    channel, hold_bridge = record["channel_id"], f"/bridges/hold-{record['id']}"

    async def in_hold_bridge() -> None:
        status, bridge = await ari_request(asterisk, "GET", hold_bridge)
        assert status == 200 and bridge["channels"] == [channel]

    await eventually(in_hold_bridge, 10.0, "caller in the holding bridge")
    await proc.kill()
    await ari_request(asterisk, "POST", f"{hold_bridge}/removeChannel?channel={channel}")
    await ari_request(asterisk, "DELETE", f"/channels/{channel}/moh")
    assert (await ari_request(asterisk, "DELETE", hold_bridge))[0] == 204
    async with ami_watch(asterisk) as ami:
        await proc.start()
        await ami.wait_for(moh("MusicOnHoldStart", channel), within=15.0)
    await eventually(in_hold_bridge, 10.0, "the hold finished after the restart")
    again = await proc.api("POST", f"/api/calls/{record['id']}/hold", status=409)
    assert again["code"] == "CALL_002"
    async with ami_watch(asterisk) as ami:
        unheld = await proc.api("POST", f"/api/calls/{record['id']}/unhold")
        assert timeline_kinds(unheld)[-1] == "unheld"
        await ami.wait_for(moh("MusicOnHoldStop", channel))
    status, talk = await ari_request(asterisk, "GET", f"/bridges/talk-{record['id']}")
    assert status == 200 and channel in talk["channels"] and len(talk["channels"]) == 2
    await proc.api("POST", f"/api/asterisk/channels/{channel}/hangup")
    assert (await ended_cleanly(call)).answered
    [settled] = await proc.settled_calls(1, within=20)
    detail = await proc.call(settled["id"])
    assert_closed_properly(detail)
    assert (detail["status"], detail["operator_id"]) == ("completed", op1003)
    assert len(calls_from(phones["1003"], "5552012")) == 1  # rung once, across the restart


async def test_daemon_killed_during_a_blind_transfer_the_caller_waits_again(
    proc: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
) -> None:
    phones = await operator_phones.start(
        {"1004": PhoneBehaviour.answer(200), "1009": PhoneBehaviour.ring_until_cancelled()}
    )
    op1004, op1009 = await proc.operator("1004"), await proc.operator("1009")
    await proc.queue("billing", ["1004"])
    call = await caller.dial(
        asterisk.queue_number("billing"), "5552012", hang_up_after_ms=CALLER_LIMIT_MS
    )
    await talking(phones["1004"], "5552012")
    record = await record_status(proc, "5552012", "answered")
    target = {"target": {"type": "operator", "id": op1009}, "mode": "blind"}
    await proc.api("POST", f"/api/calls/{record['id']}/transfer", target)
    await phones["1009"].wait_for(lambda calls: len(calls) == 1)  # the target rings ...
    await proc.kill()  # ... when the daemon dies
    await proc.start()

    # The caller is not hung up: it waits in its queue again, and 1004 (free now) has it.
    await phones["1004"].wait_for(lambda _: len(calls_from(phones["1004"], "5552012")) == 2, 20)
    await talking(phones["1004"], "5552012")
    [rung] = await phones["1009"].wait_for(lambda calls: calls[0].state.is_final)
    assert not rung.answered  # the target's ring was cut by the restart
    detail = await proc.call(record["id"])
    assert detail["status"] == "answered" and detail["operator_id"] == op1004
    assert "reconciled" in timeline_kinds(detail)
    await proc.api("POST", f"/api/asterisk/channels/{record['channel_id']}/hangup")
    assert (await ended_cleanly(call)).answered
    [settled] = await proc.settled_calls(1, within=20)
    detail = await proc.call(settled["id"])
    assert_closed_properly(detail)
    assert (detail["status"], detail["operator_id"]) == ("completed", op1004)
    outcomes = [(leg["operator_id"], leg["outcome"]) for leg in detail["legs"]]
    assert outcomes[0] == (op1004, "transferred")
    assert (op1009, "lost") in outcomes
    assert outcomes[-1] == (op1004, "caller_hangup")
    first, last = detail["legs"][0], detail["legs"][-1]
    assert first["talk_seconds"] > 0 and last["talk_seconds"] >= 0


# ---- b. SIGTERM --------------------------------------------------------------------------------


async def test_sigterm_exits_promptly_and_calls_fall_back_while_down(
    proc: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
) -> None:
    phones = await operator_phones.start(
        {
            "1003": PhoneBehaviour.answer(200),  # talks until the far end hangs up
            "1004": PhoneBehaviour.answer(200, hang_up_after_ms=1000),
        }
    )
    await proc.operator("1003")
    await proc.queue("billing", ["1003"])

    talk = await caller.dial(asterisk.queue_number("billing"), "5553001", hang_up_after_ms=10_000)
    await talking(phones["1003"], "5553001")
    wait = await caller.dial(asterisk.queue_number("billing"), "5553002", hang_up_after_ms=12_000)
    await waiting_in_queue(proc, "5553002")

    seconds, exit_code = await proc.terminate(within=30)
    assert exit_code == 0, f"exit {exit_code} after {seconds:.1f} s; log:\n{proc.log_tail()}"
    assert seconds < SIGTERM_BOUND_S, f"took {seconds:.1f} s to exit with calls up"

    # Down: Stasis() fails at once for want of a connected app, so the dialplan's Queue()
    # takes a new call and a phone rings (1004: the only idle one of `support`'s members).
    # (Asterisk may still list the app while channels of the old daemon are in it.)
    fallback = await caller.dial(asterisk.queue_number("support"), "5553003")
    fallback_outcome = await ended_cleanly(fallback, within=30)
    assert fallback_outcome.answered
    rung = [c for phone in phones.values() for c in calls_from(phone, "5553003")]
    assert any(c.answered for c in rung), rung

    # Up again on the same state: the two calls it had are final or reconciled now.
    await proc.start()
    await ended_cleanly(talk)
    await ended_cleanly(wait)
    records = await proc.settled_calls(2, within=30)  # the Queue() call: no daemon, no record
    details = {c["caller_number"]: await proc.call(c["id"]) for c in records}
    assert set(details) == {"5553001", "5553002"}
    for record in details.values():
        assert_closed_properly(record)
    assert details["5553001"]["status"] == "completed"
    assert details["5553002"]["status"] in FINAL_STATUSES
    await phones["1003"].wait_for(lambda calls: all(c.state.is_final for c in calls))
    assert await asyncio.to_thread(asterisk.active_channel_count) == 0


# ---- c. Asterisk restarted ---------------------------------------------------------------------


async def test_asterisk_restart_mid_conversation_and_mid_queue(
    proc: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
) -> None:
    # The phone talks until the far end hangs up: the first call lasts until Asterisk goes.
    phones = await operator_phones.start({"1005": PhoneBehaviour.answer(200)})
    await proc.operator("1005")
    await proc.queue("vip", ["1005"])
    talk = await caller.dial(
        asterisk.queue_number("vip"), "5554001", hang_up_after_ms=CALLER_LIMIT_MS
    )
    await talking(phones["1005"], "5554001", within=10)
    wait = await caller.dial(
        asterisk.queue_number("vip"), "5554002", hang_up_after_ms=CALLER_LIMIT_MS
    )
    await waiting_in_queue(proc, "5554002")

    # From this (the test's) thread: Asterisk dies with the thread that started it.
    asterisk.restart()  # `core stop now`: channels are hung up, with events, then it exits
    back = await wait_app(asterisk, registered=True, within=10)
    assert back < APP_BACK_BOUND_S, f"app registered again only after {back:.2f} s"

    # The calls ended with Asterisk: both SIP sides were hung up.
    talk_outcome = await talk.outcome(within=30)
    wait_outcome = await wait.outcome(within=30)
    assert talk_outcome.exit_code == 0, talk_outcome
    assert wait_outcome.exit_code == 0, wait_outcome

    # Closed by the hang-up events Asterisk sent on its way down, or by reconciliation after.
    talk_record = await record_status(proc, "5554001", "completed")
    wait_record = await record_status(proc, "5554002", "missed")
    for item in (talk_record, wait_record):
        assert_closed_properly(await proc.call(item["id"]))

    # A new call routes: the phone is known to the new Asterisk first.
    await operator_phones.sync_with_asterisk()
    fresh = await caller.dial(asterisk.queue_number("vip"), "5554003", hang_up_after_ms=2000)
    fresh_outcome = await ended_cleanly(fresh, within=30)
    assert fresh_outcome.answered
    await record_status(proc, "5554003", "completed")
    assert calls_from(phones["1005"], "5554003")
    await proc.settled_calls(3)


async def test_asterisk_restart_with_only_waiting_callers(
    proc: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
) -> None:
    """Mid-queue alone: nobody answered, so every record ends `missed`/`lost`."""
    phones = await operator_phones.start({"1006": PhoneBehaviour.ring_until_cancelled()})
    await proc.operator("1006")
    await proc.queue("overflow", ["1006"], ring_timeout=30)
    numbers = ["5554101", "5554102", "5554103"]
    waiting = [
        await caller.dial(asterisk.queue_number("overflow"), n, hang_up_after_ms=CALLER_LIMIT_MS)
        for n in numbers
    ]
    for number in numbers:
        await waiting_in_queue(proc, number)
    await phones["1006"].wait_for(lambda calls: len(calls) >= 1)  # the first one rings

    asterisk.restart()
    back = await wait_app(asterisk, registered=True, within=10)
    assert back < APP_BACK_BOUND_S, f"app registered again only after {back:.2f} s"

    for call in waiting:
        assert (await call.outcome(within=30)).exit_code == 0
    records = await proc.settled_calls(3, within=15)
    for item in records:
        detail = await proc.call(item["id"])
        assert_closed_properly(detail)
        assert detail["status"] == "missed", detail
    await phones["1006"].wait_for(lambda calls: all(c.state.is_final for c in calls))


def crash_asterisk(asterisk: AsteriskSandbox) -> None:
    """SIGKILL Asterisk: no hang-up, no event, the WebSocket just dies. The sandbox's process
    is Asterisk itself (unshare, sh and chroot all exec), so its pid is Asterisk's."""
    process = asterisk._process  # the harness has no crash(); its stop() is clean
    assert process is not None
    process.kill()
    process.wait(timeout=10)


async def test_asterisk_crash_mid_conversation_and_mid_queue_is_reconciled(
    proc: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
) -> None:
    """Asterisk dies without a word (SIGKILL) and comes back: the daemon saw no hang-up, so
    only reconciliation can close the records: `completed`/`missed`+`lost`, `reconciled`."""
    phones = await operator_phones.start({"1008": PhoneBehaviour.answer(200)})
    await proc.operator("1008")
    await proc.queue("q2", ["1008"])
    # The callers hang up by themselves later, into the new Asterisk (which answers 481: sipp
    # then fails the call, nothing cleaner is possible after a crash).
    talk = await caller.dial(asterisk.queue_number("q2"), "5554201", hang_up_after_ms=8000)
    await talking(phones["1008"], "5554201", within=10)
    wait = await caller.dial(asterisk.queue_number("q2"), "5554202", hang_up_after_ms=8000)
    await waiting_in_queue(proc, "5554202")

    crash_asterisk(asterisk)
    asterisk.start()
    back = await wait_app(asterisk, registered=True, within=10)
    assert back < APP_BACK_BOUND_S, f"app registered again only after {back:.2f} s"

    talk_record = await record_status(proc, "5554201", "completed")
    wait_record = await record_status(proc, "5554202", "missed")
    for item in (talk_record, wait_record):
        detail = await proc.call(item["id"])
        assert_closed_properly(detail)
        assert "reconciled" in timeline_kinds(detail), detail["events"]
    assert wait_record["reason"] == "lost"

    await operator_phones.sync_with_asterisk()
    fresh = await caller.dial(asterisk.queue_number("q2"), "5554203", hang_up_after_ms=2000)
    assert (await ended_cleanly(fresh, within=30)).answered
    assert calls_from(phones["1008"], "5554203")
    await record_status(proc, "5554203", "completed")
    await proc.settled_calls(3)
    for call in (talk, wait):  # both end (by their own BYE) instead of hanging on
        assert (await call.outcome(within=30)).exit_code is not None


# ---- d. the events WebSocket cut -------------------------------------------------------------


async def link_back(daemon: Daemon, was_since: Any, within: float = 5.0) -> float:
    """Seconds until the in-process daemon's ARI link is connected again after a cut."""
    ari = daemon.client.app[keys.SERVICES].ari
    began = time.monotonic()

    def back() -> None:
        assert ari.connected and ari.since != was_since, f"ARI link: {ari.state} {ari.last_error}"

    await eventually(back, within)
    return time.monotonic() - began


@pytest.mark.parametrize("outage_s", [0.0, 3.0], ids=["blip", "outage-3s"])
async def test_events_websocket_cut_while_calls_wait_and_talk(
    outage_s: float,
    monkeypatch: pytest.MonkeyPatch,
    daemon: Daemon,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
) -> None:
    """blip: one cut (`ss -K`), back at once; the talking call's hang-up (4 s into the call)
    comes after. outage-3s: the cut, then reconnecting fails for 3 s (the link's connect step
    is made to fail) around that hang-up, so the daemon never sees it as an event and must
    learn it when the link is back."""
    phones = await operator_phones.start({"1007": PhoneBehaviour.answer(200, 4000)})
    operator = await daemon.operator("1007")
    await daemon.queue("q3", ["1007"])
    ari = daemon.client.app[keys.SERVICES].ari

    talk = await caller.dial(asterisk.queue_number("q3"), "5555001", hang_up_after_ms=30_000)
    talk_id = (await daemon.wait_for_event("call_started"))["call_id"]
    await daemon.wait_for_event("call_answered")
    answered_at = time.monotonic()
    wait = await caller.dial(asterisk.queue_number("q3"), "5555002", hang_up_after_ms=30_000)
    wait_id = (await daemon.wait_for_event("call_started"))["call_id"]
    await daemon.wait_for_event("call_queued")

    # The scenario's timing, not a wait for anything: the cut comes 1 s (blip) or 2.5 s
    # (outage: it then spans the hang-up at 4 s) into the 4-second conversation.
    if outage_s:
        await asyncio.sleep(max(0.0, answered_at + 2.5 - time.monotonic()))
    else:
        await asyncio.sleep(max(0.0, answered_at + 1.0 - time.monotonic()))
    since = ari.since
    if outage_s:
        # Hold the outage: the link's reconnection attempts fail until it is over. (A real
        # cut is over in ~0.1 s: the link reconnects at once.)
        async def refused(endpoint: Any) -> None:
            raise aiohttp.ClientConnectionError("test: Asterisk unreachable")

        monkeypatch.setattr(ari, "_session_once", refused)
    destroyed = await cut_ari_connections(asterisk)
    assert destroyed >= 1  # at least the events WebSocket
    if outage_s:
        await asyncio.sleep(outage_s)  # the outage lasts this long: the scenario, not a wait
        assert not ari.connected
        monkeypatch.undo()
    assert await link_back(daemon, since) < 2.0
    assert await wait_app(asterisk, registered=True, within=2) < 2.0

    # The talking call's hang-up is recorded; the waiting caller then reaches 1007, rung once.
    ended = await daemon.call_record(talk_id, "completed", within=15)
    assert ended["operator_id"] == operator
    answered = await daemon.call_record(wait_id, "answered", within=15)
    assert answered["operator_id"] == operator
    assert (await talk.outcome(within=20)).exit_code == 0
    wait_outcome = await wait.outcome(within=30)
    assert wait_outcome.exit_code == 0 and wait_outcome.answered
    calls = await phones["1007"].wait_for_calls(2, within=15)
    assert [c.caller_number for c in calls] == ["5555001", "5555002"]
    assert all(c.state is PhoneCallState.COMPLETED for c in calls)

    async def listing() -> list[dict[str, Any]]:
        page = await daemon.api("GET", "/api/calls/?limit=100")
        items: list[dict[str, Any]] = page["items"]
        return items

    records = await settled_calls(listing, 2)
    assert {c["status"] for c in records} == {"completed"}
    assert await asyncio.to_thread(asterisk.active_channel_count) == 0

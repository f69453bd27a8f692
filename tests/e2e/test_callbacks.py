"""Callbacks on the real Asterisk: a waiting caller presses 1 (RFC 4733 DTMF from sipp), is
hung up, keeps their place; when an operator is free their phone rings first, then the caller
is dialed back and the two are bridged. And a callback booked before a daemon crash is served
by the next daemon.

How the caller is reached: the daemon dials `[callbacks] endpoint` with the caller's number.
Here that is `PJSIP/1020/sip:{number}@127.0.0.1:<port>`: Asterisk's endpoint 1020 (a
static-contact phone of the sandbox) used as a trunk towards a sipp listening as the caller,
so the caller's number is in the INVITE's request URI as it would be towards a provider. The
callers dial from numbers that are not endpoints (a From user naming an endpoint would be
identified as that phone, not as the trunk).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.daemon_process import DaemonProcess, timeline_kinds
from tests.eventually import eventually
from tests.sandbox import AsteriskSandbox, Callers, OperatorPhones, PhoneBehaviour
from tests.sandbox.callers import CallerOutcome
from tests.sandbox.phones import OperatorPhone

pytestmark = pytest.mark.e2e

CALLER_PHONE = "1020"  # the sipp answering as the caller
QUEUE_CALLER_ID = "7555"


@pytest.fixture
async def daemon(
    asterisk: AsteriskSandbox, sandbox_test_dir: Path, tmp_path: Path
) -> AsyncIterator[DaemonProcess]:
    """The daemon as a process (it can be killed), dialing callers back through 1020."""
    running = callback_daemon(asterisk, tmp_path, sandbox_test_dir)
    await running.start()
    yield running
    await running.close()


def callback_daemon(asterisk: AsteriskSandbox, tmp_path: Path, log_dir: Path) -> DaemonProcess:
    port = asterisk.phone_ports[CALLER_PHONE]
    endpoint = f"PJSIP/{CALLER_PHONE}/sip:{{number}}@127.0.0.1:{port}"
    return DaemonProcess(
        asterisk,
        tmp_path / "state",
        log_dir / "daemon.log",
        env={
            "CALLCENTERD_CALLBACKS_ENDPOINT": endpoint,
            "CALLCENTERD_CALLBACKS_CALLER_ID": QUEUE_CALLER_ID,
            "CALLCENTERD_CALLBACKS_RETRY_DELAY": "2",
        },
    )


async def only_callback(daemon: DaemonProcess, status: str, within: float = 20.0) -> Any:
    async def in_status() -> Any:
        found = (await daemon.api("GET", "/api/callbacks/"))["items"]
        assert len(found) == 1 and found[0]["status"] == status, found
        return found[0]

    return await eventually(in_status, within)


async def offline_operator_and_callback_queue(
    daemon: DaemonProcess,
    phones: OperatorPhones,
    extension: str,
    queue: str,
    behaviours: tuple[PhoneBehaviour, PhoneBehaviour],
) -> tuple[dict[str, OperatorPhone], str, str]:
    """The operator's phone and the caller's (`behaviours`); the operator offline, so callers
    wait; a queue offering callbacks after 1 s. Returns (phones, operator id, queue id)."""
    started = await phones.start(dict(zip((extension, CALLER_PHONE), behaviours, strict=True)))
    operator_id = await daemon.operator(extension)
    await daemon.api("PUT", f"/api/operators/{operator_id}/status", {"status": "offline"})
    queue_id = await daemon.queue(queue, [extension], callback_enabled=True, callback_offer_after=1)
    return started, operator_id, queue_id


async def press_1_in(
    daemon: DaemonProcess, caller: Callers, number: str, caller_number: str
) -> tuple[Any, CallerOutcome]:
    """A caller dials `number`, is offered the callback after 1 s and presses 1 at 3 s:
    (the pending callback, the caller's call once Asterisk has hung it up)."""
    call = await caller.dial_and_press_1(number, caller_number, press_after_ms=3000)
    pending = await only_callback(daemon, "pending")
    outcome = await call.outcome(within=30)
    assert outcome.exit_code == 0 and outcome.answered
    return pending, outcome


async def test_press_1_hang_up_operator_rings_first_then_the_caller_is_dialed_and_bridged(
    daemon: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
) -> None:
    behaviours = (PhoneBehaviour.answer(100, hang_up_after_ms=2000), PhoneBehaviour.answer(300))
    phones, operator_id, queue_id = await offline_operator_and_callback_queue(
        daemon, operator_phones, "1001", "support", behaviours
    )
    pending, outcome = await press_1_in(daemon, caller, asterisk.queue_number("support"), "5559001")
    # The caller's own call: confirmed, then hung up by Asterisk; ended as `callback`.
    assert outcome.hung_up_by is not None and outcome.hung_up_by.name == "FAR_END"
    origin = await daemon.call(pending["origin_call_id"])
    assert (origin["status"], origin["reason"]) == ("missed", "callback")
    assert "callback_requested" in timeline_kinds(origin)
    assert pending["number"] == "5559001" and pending["queue_id"] == queue_id
    assert phones["1001"].calls() == [] and phones[CALLER_PHONE].calls() == []

    # An operator becomes free: their phone rings first, then the caller's.
    await daemon.api("PUT", f"/api/operators/{operator_id}/status", {"status": "online"})
    [operator_leg] = await phones["1001"].wait_for_calls(1, within=20)
    [caller_leg] = await phones[CALLER_PHONE].wait_for_calls(1, within=20)
    assert operator_leg.answered and caller_leg.answered
    assert operator_leg.answered_at is not None
    assert operator_leg.answered_at <= caller_leg.invited_at
    assert caller_leg.caller_number == QUEUE_CALLER_ID
    done = await only_callback(daemon, "completed")
    assert done["operator_id"] == operator_id and done["attempts"] == 1
    record = await daemon.call_record(done["call_id"], "completed", within=20)
    assert record["operator_id"] == operator_id and record["routed_by"] == "callback"
    kinds = timeline_kinds(record)
    for kind in ("callback_requested", "ringing", "callback_dialing", "answered"):
        assert kind in kinds, kinds
    assert kinds.index("callback_dialing") < kinds.index("answered")
    assert record["reason"] == "operator_hangup" and record["duration"] >= 1


async def test_a_callback_booked_before_a_crash_is_served_after_the_restart(
    daemon: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
) -> None:
    behaviours = (PhoneBehaviour.answer(100, hang_up_after_ms=1500), PhoneBehaviour.answer(200))
    phones, operator_id, _ = await offline_operator_and_callback_queue(
        daemon, operator_phones, "1002", "sales", behaviours
    )
    pending, _ = await press_1_in(daemon, caller, asterisk.queue_number("sales"), "5559002")

    await daemon.kill()  # a crash: nothing is cleaned up
    await daemon.start()
    again = await only_callback(daemon, "pending")
    assert again["place_at"] == pending["place_at"]
    await daemon.api("PUT", f"/api/operators/{operator_id}/status", {"status": "online"})
    [caller_leg] = await phones[CALLER_PHONE].wait_for_calls(1, within=20)
    assert caller_leg.answered
    done = await only_callback(daemon, "completed")
    record = await daemon.call_record(done["call_id"], "completed", within=20)
    assert record["operator_id"] == operator_id
    assert done["call_id"] == pending["call_id"]  # the same record, from before the crash


async def test_a_caller_who_stays_busy_is_dialed_max_attempts_times_then_failed(
    daemon: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
) -> None:
    behaviours = (PhoneBehaviour.answer(100), PhoneBehaviour.busy())
    phones, operator_id, _ = await offline_operator_and_callback_queue(
        daemon, operator_phones, "1003", "billing", behaviours
    )
    await press_1_in(daemon, caller, asterisk.queue_number("billing"), "5559003")
    await daemon.api("PUT", f"/api/operators/{operator_id}/status", {"status": "online"})
    failed = await only_callback(daemon, "failed", within=60)
    assert failed["attempts"] == 3 and failed["reason"] == "busy"
    dials = await phones[CALLER_PHONE].wait_for_calls(3)
    assert [d.answered for d in dials] == [False, False, False]
    # the operator was rung (and hung up) for each attempt, and is free again
    assert len(await phones["1003"].wait_for_calls(3)) == 3
    record = await daemon.call_record(failed["call_id"], "missed")
    assert record["reason"] == "callback_failed"
    assert timeline_kinds(record).count("callback_dialing") == 3

"""Routing scenarios on the real sandbox: every strategy, overflow, hang-ups, races, wrap-up,
skills-only queues and recordings.

Each test asserts the SIP outcome on both sides (sipp caller and phones), the stored call
record (`GET /api/calls/{id}`) and the events published on the bus.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from callcenterd import keys
from tests.e2e.daemon import Daemon
from tests.eventually import eventually
from tests.sandbox import AsteriskSandbox, Callers, OperatorPhones, PhoneBehaviour
from tests.sandbox.callers import CallerOutcome
from tests.sandbox.phones import OperatorPhone, PhoneCallState
from tests.sandbox.sipp import Side

pytestmark = pytest.mark.e2e
FAST = {"ring_timeout": 2, "retry_delay": 1}
EXTENSIONS = ["1001", "1002", "1003"]


@dataclass
class Placed:
    """One call as everyone saw it: the caller, the bus, the stored record."""

    outcome: CallerOutcome
    call_id: str
    events: list[tuple[str, dict[str, Any]]]
    record: dict[str, Any]

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [data for k, data in self.events if k == kind]

    def timeline(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.record["events"] if event["kind"] == kind]

    def leg_outcomes(self) -> list[str]:
        return [event["data"]["outcome"] for event in self.timeline("leg_ended")]


async def call_events(
    daemon: Daemon, ended: int = 1, within: float = 30.0
) -> list[tuple[str, dict[str, Any]]]:
    """Every bus event until `ended` calls ended (operator events left out)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while sum(kind == "call_ended" for kind, _ in seen) < ended:
        remaining = deadline - loop.time()
        assert remaining > 0, f"only {seen} within {within} s"
        event = await daemon.events.next(remaining)
        if event.type.startswith("call_"):
            seen.append((event.type, event.data))
    return seen


async def place(
    daemon: Daemon,
    phones: OperatorPhones,
    caller: Callers,
    number: str,
    caller_number: str,
    *,
    status: str = "completed",
    hang_up_after_ms: int | None = None,
    within: float = 30.0,
) -> Placed:
    """Dial, wait for the call to end on the bus and in the store."""
    await all_online(daemon, phones)
    call = await caller.dial(number, caller_number, hang_up_after_ms=hang_up_after_ms)
    events = await call_events(daemon, within=within)
    outcome = await call.outcome(within=within)
    [started] = [data for kind, data in events if kind == "call_started"]
    call_id = started["call_id"]
    assert all(data["call_id"] == call_id for _, data in events), events
    record = await daemon.call_record(call_id, status)
    return Placed(outcome, call_id, events, record)


async def all_online(daemon: Daemon, phones: OperatorPhones, within: float = 10.0) -> None:
    """Until the daemon shows every operator online. It follows Asterisk's endpoint states,
    and a periodic qualify that reached a phone's port while no phone ran (between tests)
    marks it unreachable 3 s later: qualify again and it is back at once."""
    attempts: list[int] = []

    async def online() -> None:
        listed = await daemon.api("GET", "/api/operators/")
        if not attempts and not all(o["status"] == "online" for o in listed):
            await phones.sync_with_asterisk()
        attempts.append(1)
        assert all(o["status"] == "online" for o in listed), f"operators not all online: {listed}"

    await eventually(online, within)


def ring_order(phones: dict[str, OperatorPhone]) -> list[str]:
    """Extensions in the order their phones got INVITEs, across every call so far."""
    invites = [(call.invited_at, ext) for ext, phone in phones.items() for call in phone.calls()]
    return [ext for _, ext in sorted(invites)]


async def operator_user(daemon: Daemon, extension: str) -> tuple[str, str]:
    """(user id, operator id) of a new, online operator."""
    operator_id = await daemon.operator(extension)
    users = await daemon.api("GET", "/api/admin/users?limit=100")
    items = users["items"] if isinstance(users, dict) else users
    [user] = [u for u in items if u["username"] == f"op{extension}"]
    return str(user["id"]), operator_id


def answered_normally(placed: Placed, operator_id: str) -> None:
    """The caller was answered and the call completed with this operator, on every side."""
    assert placed.outcome.exit_code == 0 and placed.outcome.answered
    assert placed.kinds()[0] == "call_started" and placed.kinds()[-1] == "call_ended"
    [answered] = placed.of("call_answered")
    assert answered["operator_id"] == operator_id
    [ended] = placed.of("call_ended")
    assert ended["status"] == "completed"
    assert placed.record["status"] == "completed"
    assert placed.record["operator_id"] == operator_id
    assert operator_id in placed.record["operators_tried"]
    assert [e["operator_id"] for e in placed.of("call_ringing")] == placed.record["operators_tried"]
    assert len(placed.timeline("answered")) == 1


async def settle(phones: dict[str, OperatorPhone], counts: dict[str, int]) -> None:
    for ext, count in counts.items():
        await phones[ext].wait_for_calls(count)
    for ext, count in counts.items():
        assert len(phones[ext].calls()) == count, (ext, phones[ext].calls())


# --- one queue per strategy ------------------------------------------------------------------
async def test_linear_always_starts_from_the_first_member(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start(
        {
            "1001": PhoneBehaviour.busy(),
            "1002": PhoneBehaviour.answer(200, hang_up_after_ms=500),
            "1003": PhoneBehaviour.answer(200, hang_up_after_ms=500),
        }
    )
    ids = [await daemon.operator(ext) for ext in EXTENSIONS]
    await daemon.queue("sales", EXTENSIONS, strategy="linear", **FAST)

    placed = [
        await place(daemon, operator_phones, caller, asterisk.queue_number("sales"), f"555100{i}")
        for i in range(2)
    ]

    await settle(phones, {"1001": 2, "1002": 2, "1003": 0})
    assert ring_order(phones) == ["1001", "1002", "1001", "1002"]
    assert all(c.state is PhoneCallState.REJECTED for c in phones["1001"].calls())
    for one in placed:
        answered_normally(one, ids[1])
        assert one.record["operators_tried"] == ids[:2]
        assert one.leg_outcomes() == ["busy"]
        assert one.record["reason"] == "operator_hangup"


async def test_rrordered_goes_on_after_the_last_rung(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start(
        {
            "1001": PhoneBehaviour.answer(200, hang_up_after_ms=500),
            "1002": PhoneBehaviour.busy(),
            "1003": PhoneBehaviour.answer(200, hang_up_after_ms=500),
        }
    )
    ids = [await daemon.operator(ext) for ext in EXTENSIONS]
    await daemon.queue("sales", EXTENSIONS, strategy="rrordered", **FAST)

    placed = [
        await place(daemon, operator_phones, caller, asterisk.queue_number("sales"), f"555200{i}")
        for i in range(3)
    ]

    await settle(phones, {"1001": 2, "1002": 1, "1003": 1})
    # Call 1: 1001. Call 2: after 1001 comes 1002 (busy), then 1003. Call 3: wraps to 1001.
    assert ring_order(phones) == ["1001", "1002", "1003", "1001"]
    answered_normally(placed[0], ids[0])
    answered_normally(placed[1], ids[2])
    answered_normally(placed[2], ids[0])
    assert placed[1].record["operators_tried"] == [ids[1], ids[2]]
    assert placed[1].leg_outcomes() == ["busy"]
    assert placed[0].record["operators_tried"] == [ids[0]]
    assert placed[2].record["operators_tried"] == [ids[0]]


async def test_rrmemory_rotates_through_every_member(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start(
        {ext: PhoneBehaviour.answer(200, hang_up_after_ms=500) for ext in EXTENSIONS}
    )
    ids = [await daemon.operator(ext) for ext in EXTENSIONS]
    await daemon.queue("sales", EXTENSIONS, strategy="rrmemory", **FAST)

    placed = [
        await place(daemon, operator_phones, caller, asterisk.queue_number("sales"), f"555300{i}")
        for i in range(4)
    ]

    taken = [one.record["operator_id"] for one in placed]
    await settle(phones, {ext: taken.count(ids[i]) for i, ext in enumerate(EXTENSIONS)})
    # Every member once, one call each, then the rotation starts over.
    assert sorted(taken[:3]) == sorted(ids)
    assert taken[3] == taken[0]
    order = ring_order(phones)
    assert order == [EXTENSIONS[ids.index(op)] for op in taken]
    for one, operator_id in zip(placed, taken, strict=True):
        answered_normally(one, operator_id)
        assert one.record["operators_tried"] == [operator_id]  # one phone rang per call


async def test_leastrecent_rings_who_has_waited_longest(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start(
        {ext: PhoneBehaviour.answer(200, hang_up_after_ms=500) for ext in EXTENSIONS}
    )
    ids = [await daemon.operator(ext) for ext in EXTENSIONS]
    await daemon.queue("sales", EXTENSIONS, strategy="leastrecent", **FAST)

    placed = [
        await place(daemon, operator_phones, caller, asterisk.queue_number("sales"), f"555400{i}")
        for i in range(4)
    ]

    await settle(phones, {"1001": 2, "1002": 1, "1003": 1})
    assert ring_order(phones) == ["1001", "1002", "1003", "1001"]
    for one, operator_id in zip(placed, [*ids, ids[0]], strict=True):
        answered_normally(one, operator_id)
        assert one.record["operators_tried"] == [operator_id]


async def test_fewestcalls_rings_who_completed_fewest(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start(
        {
            "1001": PhoneBehaviour.answer(200, hang_up_after_ms=500),
            "1002": PhoneBehaviour.busy(),
            "1003": PhoneBehaviour.answer(200, hang_up_after_ms=500),
        }
    )
    ids = [await daemon.operator(ext) for ext in EXTENSIONS]
    await daemon.queue("sales", EXTENSIONS, strategy="fewestcalls", **FAST)

    placed = [
        await place(daemon, operator_phones, caller, asterisk.queue_number("sales"), f"555500{i}")
        for i in range(3)
    ]

    await settle(phones, {"1001": 2, "1002": 2, "1003": 1})
    # Call 1: all at 0, member order: 1001. Call 2: 1002 (0, busy), then 1003 (0).
    # Call 3: 1002 still has 0 completed (busy), then 1001 and 1003 tie at 1: member order.
    assert ring_order(phones) == ["1001", "1002", "1003", "1002", "1001"]
    answered_normally(placed[0], ids[0])
    answered_normally(placed[1], ids[2])
    answered_normally(placed[2], ids[0])
    assert placed[1].record["operators_tried"] == [ids[1], ids[2]]
    assert placed[2].record["operators_tried"] == [ids[1], ids[0]]


@pytest.mark.parametrize("strategy", ["random", "wrandom"])
async def test_random_tries_each_member_once_per_round(
    strategy: str,
    daemon: Daemon,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
) -> None:
    phones = await operator_phones.start(
        {
            "1001": PhoneBehaviour.busy(),
            "1002": PhoneBehaviour.busy(),
            "1003": PhoneBehaviour.answer(200, hang_up_after_ms=500),
        }
    )
    ids = [await daemon.operator(ext) for ext in EXTENSIONS]
    await daemon.queue("sales", EXTENSIONS, strategy=strategy, **FAST)

    placed = [
        await place(daemon, operator_phones, caller, asterisk.queue_number("sales"), f"555600{i}")
        for i in range(3)
    ]

    rings = 0
    for one in placed:
        answered_normally(one, ids[2])
        tried = one.record["operators_tried"]
        # One at a time, never the same twice, until the one who answers.
        assert len(set(tried)) == len(tried) and set(tried) <= set(ids)
        assert one.leg_outcomes() == ["busy"] * (len(tried) - 1)
        rings += len(tried)
    await settle(phones, {"1003": 3})
    assert sum(len(phone.calls()) for phone in phones.values()) == rings
    invites = sorted(c.invited_at for phone in phones.values() for c in phone.calls())
    assert len(set(invites)) == len(invites)  # never two phones at once


async def test_ringall_rings_everyone_at_once_and_one_connects(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start(
        {
            "1001": PhoneBehaviour.ring_until_cancelled(),
            "1002": PhoneBehaviour.answer(400, hang_up_after_ms=600),
            "1003": PhoneBehaviour.ring_until_cancelled(),
        }
    )
    ids = [await daemon.operator(ext) for ext in EXTENSIONS]
    await daemon.queue("sales", EXTENSIONS, strategy="ringall", **FAST)

    placed = [
        await place(daemon, operator_phones, caller, asterisk.queue_number("sales"), f"555700{i}")
        for i in range(2)
    ]

    await settle(phones, {ext: 2 for ext in EXTENSIONS})
    for index, one in enumerate(placed):
        answered_normally(one, ids[1])
        assert sorted(one.record["operators_tried"]) == sorted(ids)
        assert sorted(one.leg_outcomes()) == ["cancelled", "cancelled"]
        invited = [phones[ext].calls()[index].invited_at for ext in EXTENSIONS]
        assert (max(invited) - min(invited)).total_seconds() < 0.5  # all at once
    for ext in ("1001", "1003"):
        assert all(c.state is PhoneCallState.CANCELLED for c in phones[ext].calls())
    assert all(c.answered for c in phones["1002"].calls())


# --- overflow ---------------------------------------------------------------------------------
async def test_max_wait_time_hangs_up(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start({"1001": PhoneBehaviour.ring_until_cancelled()})
    operator_id = await daemon.operator("1001")
    queue_id = await daemon.queue("vip", ["1001"], max_wait_time=3, ring_timeout=10)

    placed = await place(
        daemon, operator_phones, caller, asterisk.queue_number("vip"), "5558001", status="missed"
    )

    assert placed.outcome.exit_code == 0
    assert placed.outcome.hung_up_by is Side.FAR_END
    [rang] = await phones["1001"].wait_for_calls(1)
    assert rang.state is PhoneCallState.CANCELLED
    assert placed.of("call_answered") == []
    [ended] = placed.of("call_ended")
    assert (ended["status"], ended["reason"]) == ("missed", "timeout")
    record = placed.record
    assert (record["reason"], record["operator_id"], record["queue_id"]) == (
        "timeout",
        None,
        queue_id,
    )
    assert record["operators_tried"] == [operator_id]
    assert placed.leg_outcomes() == ["cancelled"]
    assert 2.5 <= record["wait_seconds"] <= 5


async def test_max_wait_time_moves_to_another_queue(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start(
        {
            "1001": PhoneBehaviour.ring_until_cancelled(),
            "1002": PhoneBehaviour.answer(200, hang_up_after_ms=600),
        }
    )
    first = await daemon.operator("1001")
    second = await daemon.operator("1002")
    overflow_id = await daemon.queue("overflow", ["1002"])
    vip_id = await daemon.queue(
        "vip",
        ["1001"],
        max_wait_time=2,
        ring_timeout=10,
        overflow_action="queue",
        overflow_queue_id=overflow_id,
    )

    placed = await place(daemon, operator_phones, caller, asterisk.queue_number("vip"), "5558002")

    answered_normally(placed, second)
    [rang] = await phones["1001"].wait_for_calls(1)
    [taken] = await phones["1002"].wait_for_calls(1)
    assert rang.state is PhoneCallState.CANCELLED and taken.answered
    assert (taken.invited_at - rang.invited_at).total_seconds() >= 1.8
    assert [e["queue_id"] for e in placed.of("call_queued")] == [vip_id, overflow_id]
    queued = placed.timeline("queued")
    assert [e["data"].get("moved_from") for e in queued] == [None, vip_id]
    assert placed.record["queue_id"] == overflow_id
    assert placed.record["operators_tried"] == [first, second]
    assert placed.leg_outcomes() == ["cancelled"]


# --- hang-ups and races ---------------------------------------------------------------------
async def test_caller_hangs_up_during_the_conversation(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start({"1001": PhoneBehaviour.answer(200)})
    operator_id = await daemon.operator("1001")
    await daemon.queue("support", ["1001"])

    placed = await place(
        daemon,
        operator_phones,
        caller,
        asterisk.queue_number("support"),
        "5559001",
        hang_up_after_ms=2000,
    )

    answered_normally(placed, operator_id)
    assert placed.outcome.hung_up_by is Side.THIS_END
    [ended] = placed.of("call_ended")
    assert ended["reason"] == "caller_hangup"
    assert placed.record["reason"] == "caller_hangup"
    assert placed.record["duration"] >= 1
    [received] = await phones["1001"].wait_for_calls(1)
    assert received.state is PhoneCallState.COMPLETED
    assert received.hung_up_by is Side.FAR_END  # the operator's phone got the BYE


async def test_ringall_two_answers_at_once_one_wins(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    # Ringall rings both phones within a few ms and both answer 300 ms after their INVITE, so
    # their 200 OKs cross. The daemon cancels the other leg ~5 ms after the first answer and
    # sipp's timing jitters about as much, so calls repeat until one shows both answering.
    extensions = ["1001", "1002"]
    phones = await operator_phones.start({ext: PhoneBehaviour.answer(300) for ext in extensions})
    ids = {ext: await daemon.operator(ext) for ext in extensions}
    await daemon.queue("sales", extensions, strategy="ringall", ring_timeout=5)

    both_answered = 0
    for index in range(8):
        placed = await place(
            daemon,
            operator_phones,
            caller,
            asterisk.queue_number("sales"),
            f"55590{index}0",
            hang_up_after_ms=800,
        )
        [answered] = placed.of("call_answered")  # never a double answer
        winner = answered["operator_id"]
        answered_normally(placed, winner)
        assert placed.outcome.hung_up_by is Side.THIS_END
        assert placed.record["reason"] == "caller_hangup"
        assert sorted(placed.record["operators_tried"]) == sorted(ids.values())
        assert placed.leg_outcomes() == ["cancelled"]
        [won_ext] = [ext for ext in extensions if ids[ext] == winner]
        [lost_ext] = [ext for ext in extensions if ids[ext] != winner]
        won = (await phones[won_ext].wait_for_calls(index + 1))[index]
        lost = (await phones[lost_ext].wait_for_calls(index + 1))[index]
        assert won.answered and won.state is PhoneCallState.COMPLETED
        assert won.hung_up_by is Side.FAR_END  # the caller's hang-up reached the operator
        if lost.answered:
            # Answered too, after the other: torn down at once (BYE; or CANCEL, ACK and BYE
            # when the 200 OK crossed the CANCEL, which the phone's trace shows as
            # "cancelled"), never left talking.
            both_answered += 1
            assert lost.state in (PhoneCallState.COMPLETED, PhoneCallState.CANCELLED)
            assert lost.hung_up_by in (Side.FAR_END, None)
            break
        assert lost.state is PhoneCallState.CANCELLED
    assert both_answered == 1, "no call had both phones answer: the race was not exercised"


# --- wrap-up, skills, recording ---------------------------------------------------------------
async def test_wrapup_is_respected_between_two_calls(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start({"1001": PhoneBehaviour.answer(200, 800)})
    operator_id = await daemon.operator("1001")
    await daemon.queue("billing", ["1001"], wrapup_seconds=3, **FAST)

    number = asterisk.queue_number("billing")
    await all_online(daemon, operator_phones)
    first_call = await caller.dial(number, "5550101")
    await phones["1001"].wait_for(lambda calls: bool(calls) and calls[0].answered)
    second_call = await caller.dial(number, "5550102")  # waits while 1001 talks, then wraps up
    events = await call_events(daemon, ended=2, within=30)
    outcomes = [await first_call.outcome(), await second_call.outcome()]

    assert all(o.exit_code == 0 and o.answered for o in outcomes)
    ended = [data for kind, data in events if kind == "call_ended"]
    records = [await daemon.call_record(e["call_id"], "completed") for e in ended]
    first, second = sorted(records, key=lambda r: r["start_time"])
    assert first["caller_number"] == "5550101" and second["caller_number"] == "5550102"
    assert first["operator_id"] == second["operator_id"] == operator_id
    calls = await phones["1001"].wait_for_calls(2)
    first_end = datetime.fromisoformat(first["end_time"])
    gap = (calls[1].invited_at - first_end).total_seconds()
    assert gap >= 2.9, f"rung {gap:.2f} s after the first call ended"
    assert gap < 5
    ringing = [data for kind, data in events if kind == "call_ringing"]
    assert [r["operator_id"] for r in ringing] == [operator_id, operator_id]


async def test_skills_only_queue_rings_only_the_skilled_operator(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start(
        {ext: PhoneBehaviour.answer(200, hang_up_after_ms=500) for ext in ("1001", "1002")}
    )
    await operator_user(daemon, "1001")
    user_id, skilled = await operator_user(daemon, "1002")
    await daemon.api("PUT", f"/api/admin/users/{user_id}", {"skills": ["french"]})
    listed = await daemon.api("GET", "/api/operators/")
    assert {o["id"]: o["skills"] for o in listed}[skilled] == ["french"]
    # The new skills reach the routing engine with the update itself (no status change).
    queue_id = await daemon.queue("q2", [], required_skills=["french"], strategy="linear")

    placed = [
        await place(daemon, operator_phones, caller, asterisk.queue_number("q2"), f"555800{i}")
        for i in range(2)
    ]

    await settle(phones, {"1001": 0, "1002": 2})
    for one in placed:
        answered_normally(one, skilled)
        assert one.record["operators_tried"] == [skilled]
        assert one.record["queue_id"] == queue_id


async def test_connected_call_is_recorded_and_downloadable(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    await operator_phones.start({"1001": PhoneBehaviour.answer(200, hang_up_after_ms=3000)})
    operator_id = await daemon.operator("1001")
    await daemon.queue("support", ["1001"])
    await daemon.api("PUT", "/api/admin/settings", {"call_recording": True})
    services = daemon.client.app[keys.SERVICES]
    assert services.dispatcher.record_calls  # the saved setting reaches the dispatcher

    placed = await place(
        daemon, operator_phones, caller, asterisk.queue_number("support"), "5559100"
    )

    answered_normally(placed, operator_id)
    record = placed.record
    assert record["recording_url"] == f"/api/calls/{placed.call_id}/recording"
    assert len(placed.timeline("recording_started")) == 1
    talk = (
        datetime.fromisoformat(record["end_time"]) - datetime.fromisoformat(record["answer_time"])
    ).total_seconds()

    async def recorded() -> bytes:  # complete once Asterisk closes the file, just after the call
        response = await daemon.client.get(record["recording_url"], headers=daemon.headers)
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == "audio/wav"
        body = await response.read()
        assert len(body) > 44 + 8000 * 2 * (talk - 1), f"{len(body)} bytes so far"
        return body

    body = await eventually(recorded)
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE" and len(body) > 1024
    seconds = (len(body) - 44) / (8000 * 2)  # 8 kHz, 16-bit mono
    assert abs(seconds - talk) < 1.0, (seconds, talk)

    # A call without a recording, then Asterisk gone.
    other = await daemon.api(
        "POST", "/api/calls/", {"channel_id": "by-hand-1", "caller_number": "5559101"}, 201
    )
    missing = await daemon.api("GET", f"/api/calls/{other['id']}/recording", status=404)
    assert missing["code"] == "DB_002"
    # As the daemon does before it disconnects: drop the endpoint subscription first, or
    # Asterisk keeps the app registered and the next tests' calls go nowhere.
    await services.dispatcher.release(services.ari.connected_control)
    await services.ari.configure(None)
    down = await daemon.api("GET", record["recording_url"], status=503)
    assert down["code"] == "AST_004"

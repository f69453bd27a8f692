"""A paused operator on the real sandbox: never offered a call (their phone gets no INVITE),
the status events carry the pause reason, and the time in it is reported; back online, the
same operator is rung first again."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.e2e.daemon import Daemon
from tests.sandbox import AsteriskSandbox, Callers, OperatorPhones, PhoneBehaviour
from tests.ws_events import EventCollector, Frame, events_socket

pytestmark = pytest.mark.e2e

PAUSED, WORKING = "1017", "1018"
CALLS = 3


async def token_of(daemon: Daemon, username: str) -> str:
    response = await daemon.client.post(
        "/api/auth/login", json={"username": username, "password": "secret-pw"}
    )
    assert response.status == 200, await response.text()
    return str((await response.json())["access_token"])


async def status_event(listener: EventCollector, operator_id: str, status: str) -> Frame:
    """The next operator_status_changed of this operator to this status."""
    return await listener.until(
        lambda f: (
            f.get("type") == "operator_status_changed"
            and f["data"]["operator_id"] == operator_id
            and f["data"]["status"] == status
        ),
        within=10,
    )


async def set_own_status(daemon: Daemon, token: str, operator_id: str, **body: Any) -> Any:
    response = await daemon.client.put(
        f"/api/operators/{operator_id}/status",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_paused_operator_is_skipped_and_rung_again_once_back(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    # Both phones would answer at once: only the pause keeps calls away from PAUSED.
    phones = await operator_phones.start(
        {
            PAUSED: PhoneBehaviour.answer(100, hang_up_after_ms=500),
            WORKING: PhoneBehaviour.answer(100, hang_up_after_ms=500),
        }
    )
    paused_id = await daemon.operator(PAUSED)
    working_id = await daemon.operator(WORKING)
    # Linear from PAUSED: were the pause ignored, PAUSED would take every call.
    await daemon.queue("q3", [PAUSED, WORKING], strategy="linear", ring_timeout=5)
    admin_token = daemon.headers["Authorization"].removeprefix("Bearer ")
    own_token = await token_of(daemon, f"op{PAUSED}")
    url = str(daemon.client.make_url("/ws/events"))

    async with (
        aiohttp.ClientSession() as session,
        events_socket(session, url, admin_token) as admin,
        events_socket(session, url, own_token) as mine,
    ):
        # The operator pauses themselves for lunch; both listeners see why.
        shown = await set_own_status(daemon, own_token, paused_id, status="busy", reason="lunch")
        assert (shown["presence"], shown["presence_reason"]) == ("paused", "lunch")
        for listener in (admin, mine):
            paused = await status_event(listener, paused_id, "busy")
            assert (paused["data"]["reason"], paused["data"]["status_reason"]) == (
                "lunch",
                "lunch",
            )
        refused = await daemon.client.put(
            f"/api/operators/{paused_id}/status",
            json={"status": "busy", "reason": "siesta"},
            headers={"Authorization": f"Bearer {own_token}"},
        )
        assert refused.status == 422
        assert (await refused.json())["field"] == "reason"

        # Calls one after the other: each answered by WORKING, none offered to PAUSED.
        call_ids = []
        for n in range(CALLS):
            call = await caller.dial(asterisk.queue_number("q3"), caller_number=f"555710{n}")
            answered = await daemon.wait_for_event("call_answered")
            assert answered["operator_id"] == working_id
            outcome = await call.outcome(within=20)
            assert outcome.exit_code == 0 and outcome.answered
            record = await daemon.call_record(answered["call_id"], "completed")
            assert record["operators_tried"] == [working_id]
            call_ids.append(answered["call_id"])
        taken = await phones[WORKING].wait_for_calls(CALLS)
        assert [c.caller_number for c in taken] == [f"555710{n}" for n in range(CALLS)]
        assert all(c.answered for c in taken)
        assert phones[PAUSED].calls() == []  # not one INVITE reached the paused phone
        # WORKING's own status events while talking say busy on_call, with no pause reason.
        talking = await status_event(admin, working_id, "busy")
        assert (talking["data"]["reason"], talking["data"]["status_reason"]) == (None, "on_call")

        # The time at lunch is reported: the operator's stats and the activity report.
        stats = await daemon.api("GET", f"/api/operators/{paused_id}/stats")
        assert set(stats["pause_seconds_by_reason"]) == {"lunch"}
        assert stats["pause_time"] == stats["pause_seconds_by_reason"]["lunch"] >= 1
        activity = {
            row["operator_id"]: row
            for row in await daemon.api("GET", "/api/dashboard/operator-activity")
        }
        assert activity[paused_id]["pause_reason"] == "lunch"
        assert activity[paused_id]["status"] == "busy"
        assert set(activity[paused_id]["pause_seconds_today"]) == {"lunch"}
        assert activity[working_id]["pause_reason"] is None

        # Back online: the event's reason is null, and linear rings PAUSED first again.
        await set_own_status(daemon, own_token, paused_id, status="online")
        back = await status_event(mine, paused_id, "online")
        assert (back["data"]["reason"], back["data"]["status_reason"]) == (None, None)
        call = await caller.dial(asterisk.queue_number("q3"), caller_number="5557199")
        answered = await daemon.wait_for_event("call_answered")
        assert answered["operator_id"] == paused_id
        assert (await call.outcome(within=20)).exit_code == 0
        [first] = await phones[PAUSED].wait_for_calls(1)
        assert first.caller_number == "5557199" and first.answered
        record = await daemon.call_record(answered["call_id"], "completed")
        assert record["operators_tried"] == [paused_id]

    # The lunch spell ended when the operator came back: reported, no longer current.
    stats = await daemon.api("GET", f"/api/operators/{paused_id}/stats")
    assert set(stats["pause_seconds_by_reason"]) == {"lunch"}
    activity = {
        row["operator_id"]: row
        for row in await daemon.api("GET", "/api/dashboard/operator-activity")
    }
    assert activity[paused_id]["pause_reason"] is None
    assert activity[paused_id]["pause_seconds_today"] == stats["pause_seconds_by_reason"]

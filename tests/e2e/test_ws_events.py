"""The events WebSocket on the real sandbox: sipp calls produce the expected event sequence,
each listener sees what its role allows, and a reconnecting listener resumes without gaps."""

from __future__ import annotations

import aiohttp
import pytest

from tests.e2e.daemon import Daemon
from tests.sandbox import AsteriskSandbox, Callers, OperatorPhones, PhoneBehaviour
from tests.ws_events import EventCollector, Frame, events_socket

pytestmark = pytest.mark.e2e

CALL_SEQUENCE = ["call_started", "call_queued", "call_ringing", "call_answered", "call_ended"]


async def token_of(daemon: Daemon, username: str) -> str:
    response = await daemon.client.post(
        "/api/auth/login", json={"username": username, "password": "secret-pw"}
    )
    assert response.status == 200, await response.text()
    return str((await response.json())["access_token"])


async def call_frames(listener: EventCollector, call_id: str, within: float = 20.0) -> list[Frame]:
    """Every event of one call, in arrival order, up to and including its call_ended."""
    frames: list[Frame] = []
    while not frames or frames[-1]["type"] != "call_ended":
        frame = await listener.until(
            lambda f: "id" in f and f["data"].get("call_id") == call_id, within
        )
        frames.append(frame)
    return frames


async def test_a_routed_call_streams_its_events_to_each_role(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    await operator_phones.start(
        {
            "1001": PhoneBehaviour.answer(300, hang_up_after_ms=1000),
            "1002": PhoneBehaviour.answer(300, hang_up_after_ms=1000),
        }
    )
    answering = await daemon.operator("1001")
    bystander = await daemon.operator("1002")
    await daemon.queue("support", ["1001"])
    await daemon.queue("other", ["1002"])
    admin_token = daemon.headers["Authorization"].removeprefix("Bearer ")
    url = str(daemon.client.make_url("/ws/events"))

    async with (
        aiohttp.ClientSession() as session,
        events_socket(session, url, admin_token) as admin,
        events_socket(session, url, await token_of(daemon, "op1001")) as mine,
        events_socket(session, url, await token_of(daemon, "op1002")) as other,
    ):
        call = await caller.dial(asterisk.queue_number("support"), caller_number="5557001")
        started = await admin.next_event("call_started", within=20)
        call_id = started["data"]["call_id"]
        seen = [started, *await call_frames(admin, call_id)]
        outcome = await call.outcome(within=20)
        assert outcome.exit_code == 0 and outcome.answered

        # The admin sees the whole life of the call, in order, with rising ids and timestamps.
        assert [frame["type"] for frame in seen] == CALL_SEQUENCE
        assert [frame["id"] for frame in seen] == sorted({frame["id"] for frame in seen})
        assert all(set(frame) >= {"id", "type", "timestamp", "data"} for frame in seen)
        assert [f["timestamp"] for f in seen] == sorted(f["timestamp"] for f in seen)
        assert seen[2]["data"]["operator_id"] == answering
        assert seen[3]["data"]["operator_id"] == answering
        assert seen[4]["data"]["status"] == "completed"

        # The answering operator gets their call from the ring on, and their status changes.
        own = await call_frames(mine, call_id)
        assert [frame["type"] for frame in own][-3:] == [
            "call_ringing",
            "call_answered",
            "call_ended",
        ]
        busy = await mine.until(
            lambda f: (
                f.get("type") == "operator_status_changed" and f["data"]["operator_id"] == answering
            )
        )
        assert busy["data"]["status"] in {"busy", "online"}

        # The other operator sees nothing of this call, nor of their colleague's status.
        stray = [
            frame
            for frame in await other.quiet(1.0)
            if "id" in frame
            and (
                frame["data"].get("call_id") == call_id
                or frame["data"].get("operator_id") == answering
            )
        ]
        assert stray == []
        assert bystander != answering

    # Resume: a listener that reconnects with the last id it saw gets exactly what followed.
    async with (
        aiohttp.ClientSession() as session,
        events_socket(session, url, admin_token, last_event_id=seen[1]["id"]) as resumed,
    ):
        replayed = await call_frames(resumed, call_id, within=5)
        assert [frame["id"] for frame in replayed] == [frame["id"] for frame in seen[2:]]
        assert all(frame["id"] > seen[1]["id"] for frame in resumed.events)

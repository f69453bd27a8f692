"""Supervision on the sandbox: a supervisor's own sipp phone is rung, answers, and is joined to
a talking call through a snoop on the operator's channel; modes change on the live session;
the session ends (asked to, or by the supervisor hanging up, or with the call).

Each test checks the SIP sides (the caller's and the operator's sipp stay in the call; the
supervisor's phone is rung with the caller's number and hung up at the end), what Asterisk
has (the session's bridge holds the supervisor's channel and one snoop channel, snooping the
operator's channel; the old snoop is gone after a mode change), the stored audit and the
WebSocket events.

And what each party hears: the test plays every party's RTP itself (tests/sandbox/media.py):
the caller and the operator send silence, the supervisor's phone a 1 kHz tone, and the audio
Asterisk sends to the caller and to the operator shows who hears the supervisor (listen:
neither; whisper: the operator alone; barge: both). Asterisk reports no snoop's direction
anywhere (not in `core show channel`, the ARI channel or AMI's ChanSpyStart), so what the
phones are sent is the proof that the mode's directions are the right ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from callcenterd import keys
from tests.e2e.daemon import Daemon
from tests.eventually import eventually
from tests.sandbox import AsteriskSandbox, Callers, OperatorPhones
from tests.sandbox.callers import CallerCall
from tests.sandbox.media import (
    MediaEndpoint,
    asterisk_audio_port,
    caller_with_media,
    phone_with_media,
    rms,
    silence,
    tone,
)
from tests.sandbox.phones import OperatorPhone, PhoneCallState

pytestmark = pytest.mark.e2e

OPERATOR, SUPERVISOR_PHONE, CALLER = "1001", "1010", "5557100"
# Who hears the supervisor in each mode: (the operator, the caller).
HEARS = {"listen": (False, False), "whisper": (True, False), "barge": (True, True)}
# The tone's RMS is about 5600, silence's 0: anything between is neither.
LOUD, QUIET = 1000.0, 100.0
Media = Callable[[bytes], Awaitable[MediaEndpoint]]


@dataclass
class Voices:
    operator: MediaEndpoint
    caller: MediaEndpoint
    supervisor: MediaEndpoint


@dataclass
class Supervised:
    """A talking call with a supervisor ready to supervise it."""

    daemon: Daemon
    asterisk: AsteriskSandbox
    call_id: str
    operator_leg: str
    supervisor: dict[str, str]  # the Authorization header of the supervisor
    supervisor_id: str
    phones: dict[str, OperatorPhone]
    call: CallerCall
    voices: Voices
    events: list[tuple[str, dict[str, Any]]]

    async def request(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = await self.daemon.client.request(
            method, path, json=body, headers=self.supervisor
        )
        text = await response.text()
        assert response.status == status, f"{method} {path}: {response.status} {text}"
        return await response.json()

    async def ari(self, path: str) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.asterisk.ari_url}{path}", headers=self.asterisk.ari_headers) as r,
        ):
            return r.status, (await r.json() if r.status == 200 else None)

    async def gone(self, path: str) -> None:
        """Until Asterisk no longer has it (a hang-up completes after its request)."""

        async def check() -> None:
            assert (await self.ari(path))[0] == 404, path

        await eventually(check, within=10)

    async def event(self, kind: str, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first `kind` event (from the start of the test) that matches."""
        while True:
            found = next((e for t, e in self.events if t == kind and match(e)), None)
            if found is not None:
                return found
            event = await self.daemon.events.next(20)
            self.events.append((event.type, event.data))

    async def joined(self, session_id: str, mode: str) -> None:
        await self.event(
            "supervision_changed",
            lambda e: (
                e["session_id"] == session_id and e["mode"] == mode and e["state"] == "active"
            ),
        )

    async def supervisor_answers(self) -> None:
        """The supervisor's phone is rung (with the caller's number) and answers; it talks."""
        phone = self.phones[SUPERVISOR_PHONE]
        [rung] = await phone.wait_for(
            lambda calls: len(calls) == 1 and calls[0].state is PhoneCallState.TALKING
        )
        assert rung.caller_number == CALLER
        await _talking_to(self.voices.supervisor, phone.logs.messages)

    async def who_hears_the_supervisor(self) -> tuple[bool, bool]:
        """(the operator, the caller), from the next second of audio Asterisk sends each."""
        # Skip what was on its way before the step that changed who hears whom.
        heard = []
        for party in (self.voices.operator, self.voices.caller):
            await party.next_heard(10)
            level = rms(await party.next_heard(50))
            assert level > LOUD or level < QUIET, f"neither the tone nor silence: {level}"
            heard.append(level > LOUD)
        # The supervisor hears the call in every mode (spy both): Asterisk sends them audio.
        assert len(await self.voices.supervisor.next_heard(25)) == 25
        return heard[0], heard[1]

    async def bridged(self, session_id: str, snoop_number: int) -> dict[str, Any]:
        """Asterisk's view: the session's bridge holds the phone and that snoop."""
        snoop = f"snoop-{session_id}-{snoop_number}"

        async def check() -> Any:
            status, bridge = await self.ari(f"/bridges/supervise-{session_id}")
            assert status == 200
            assert set(bridge["channels"]) == {f"sup-{session_id}", snoop}, bridge
            return bridge

        await eventually(check, within=10)
        status, channel = await self.ari(f"/channels/{snoop}")
        assert status == 200
        return dict(channel)


@pytest.fixture
async def media() -> AsyncIterator[Media]:
    """`await media(audio)`: an RTP endpoint for one party, closed after the test."""
    opened: list[MediaEndpoint] = []

    async def open_one(audio: bytes) -> MediaEndpoint:
        opened.append(await MediaEndpoint.open(audio))
        return opened[-1]

    yield open_one
    for endpoint in opened:
        await endpoint.close()


async def _talking_to(endpoint: MediaEndpoint, messages_log: Path) -> None:
    """Start the party's audio once its SIP log has Asterisk's SDP."""

    def port() -> int:
        found = asterisk_audio_port(messages_log)
        assert found is not None, messages_log
        return found

    endpoint.send_to(await eventually(port, within=10))


async def _supervised(
    daemon: Daemon,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
    folder: Path,
    media: Media,
    supervisor_hangs_up_after_ms: int | None = None,
) -> Supervised:
    """The caller and the operator send silence, the supervisor's phone a tone, the whole call
    (real phones send RTP all along: see tests/sandbox/media.py)."""
    voices = Voices(await media(silence()), await media(silence()), await media(tone()))
    phones = await operator_phones.start(
        {
            OPERATOR: phone_with_media(folder, "operator", voices.operator, 200),
            SUPERVISOR_PHONE: phone_with_media(
                folder, "supervisor", voices.supervisor, 300, supervisor_hangs_up_after_ms
            ),
        }
    )
    group = await daemon.api("POST", "/api/admin/groups", {"name": "Floor"}, status=201)
    user = await daemon.api(
        "POST",
        "/api/admin/users",
        {
            "username": "agent",
            "email": "agent@example.com",
            "name": "Agent",
            "password": "secret-pw",
            "role": "operator",
            "extension": OPERATOR,
            "group_id": group["id"],
        },
        status=201,
    )
    operator = await daemon.api("GET", f"/api/admin/users/{user['id']}/operator")
    await daemon.api("PUT", f"/api/operators/{operator['id']}/status", {"status": "online"})
    await daemon.queue("support", [OPERATOR])
    coach = await daemon.api(
        "POST",
        "/api/admin/users",
        {
            "username": "coach",
            "email": "coach@example.com",
            "name": "Coach",
            "password": "secret-pw",
            "role": "supervisor",
            "group_id": group["id"],
            "extension": SUPERVISOR_PHONE,  # a supervisor's own phone (migration 0009)
        },
        status=201,
    )
    login = await daemon.client.post(
        "/api/auth/login", json={"username": "coach", "password": "secret-pw"}
    )
    token = (await login.json())["access_token"]

    call = await caller.dial(
        asterisk.queue_number("support"),
        caller_number=CALLER,
        scenario=caller_with_media(folder, "caller", voices.caller),
    )
    answered = await daemon.wait_for_event("call_answered", within=20)
    call_id = answered["call_id"]
    await phones[OPERATOR].wait_for(lambda calls: calls[0].state is PhoneCallState.TALKING)
    await _talking_to(voices.operator, phones[OPERATOR].logs.messages)
    await _talking_to(voices.caller, call.logs.messages)
    talking = daemon.client.app[keys.SERVICES].dispatcher.talking(call_id)
    assert talking is not None
    return Supervised(
        daemon,
        asterisk,
        call_id,
        talking.operator_channel_id,
        {"Authorization": f"Bearer {token}"},
        coach["id"],
        phones,
        call,
        voices,
        [],
    )


def _both_sides_still_talking(scene: Supervised) -> None:
    [operator_call] = scene.phones[OPERATOR].calls()
    assert operator_call.state is PhoneCallState.TALKING
    outcome = scene.call.snapshot()
    assert outcome.answered and outcome.hung_up_by is None and outcome.exit_code is None


@pytest.mark.parametrize("mode", ["listen", "whisper", "barge"])
async def test_each_mode_rings_the_supervisor_and_snoops_the_operator(
    daemon: Daemon,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
    sandbox_test_dir: Path,
    media: Media,
    mode: str,
) -> None:
    scene = await _supervised(daemon, asterisk, operator_phones, caller, sandbox_test_dir, media)
    url = f"/api/calls/{scene.call_id}/supervise"
    session = await scene.request("POST", url, {"mode": mode}, status=202)
    sid = session["id"]
    assert (session["state"], session["mode"], session["extension"]) == ("ringing", mode, "1010")

    # The supervisor's own phone rings, showing the caller, and answers.
    await scene.supervisor_answers()
    await scene.joined(sid, mode)
    snoop = await scene.bridged(sid, 1)
    # A snoop channel is named after the channel it snoops: the operator's leg.
    assert snoop["name"].startswith(f"Snoop/{scene.operator_leg}-")
    assert await scene.who_hears_the_supervisor() == HEARS[mode]
    _both_sides_still_talking(scene)

    ended = await scene.request("DELETE", f"{url}/{sid}")
    assert (ended["state"], ended["end_reason"]) == ("ended", "ended_by_user")
    await scene.phones[SUPERVISOR_PHONE].wait_for(
        lambda calls: calls[0].state is PhoneCallState.COMPLETED
    )
    [done] = scene.phones[SUPERVISOR_PHONE].calls()
    assert done.hung_up_by is not None and done.hung_up_by.name == "FAR_END"
    await scene.gone(f"/bridges/supervise-{sid}")
    await scene.gone(f"/channels/snoop-{sid}-1")
    _both_sides_still_talking(scene)

    [audit] = await scene.request("GET", f"/api/calls/{scene.call_id}/supervisions")
    assert audit["supervisor_id"] == scene.supervisor_id
    assert [m["mode"] for m in audit["modes"]] == [mode]
    assert audit["answered_at"] and audit["ended_at"] and audit["modes"][0]["ended_at"]
    await scene.event("supervision_ended", lambda e: e["session_id"] == sid)
    kinds = [t for t, _ in scene.events if t.startswith("supervision_")]
    assert kinds == ["supervision_started", "supervision_changed", "supervision_ended"]


async def test_mode_changes_on_a_live_session_then_the_call_ends_it(
    daemon: Daemon,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
    sandbox_test_dir: Path,
    media: Media,
) -> None:
    scene = await _supervised(daemon, asterisk, operator_phones, caller, sandbox_test_dir, media)
    url = f"/api/calls/{scene.call_id}/supervise"
    sid = (await scene.request("POST", url, {"mode": "listen"}, status=202))["id"]
    await scene.supervisor_answers()
    await scene.joined(sid, "listen")
    await scene.bridged(sid, 1)
    assert await scene.who_hears_the_supervisor() == HEARS["listen"]

    for number, mode in ((2, "whisper"), (3, "barge"), (4, "listen")):
        changed = await scene.request("PUT", f"{url}/{sid}", {"mode": mode})
        assert (changed["mode"], changed["state"]) == (mode, "active")
        await scene.bridged(sid, number)
        # The snoop before is gone; the supervisor's phone never left.
        await scene.gone(f"/channels/snoop-{sid}-{number - 1}")
        await scene.joined(sid, mode)
        assert await scene.who_hears_the_supervisor() == HEARS[mode], mode
    [rung] = scene.phones[SUPERVISOR_PHONE].calls()
    assert rung.state is PhoneCallState.TALKING  # one call all along
    _both_sides_still_talking(scene)

    # The operator's phone hangs up: the call ends, and the session with it.
    status, _ = await scene.ari(f"/channels/{scene.operator_leg}")
    assert status == 200
    async with (
        aiohttp.ClientSession() as session,
        session.delete(
            f"{asterisk.ari_url}/channels/{scene.operator_leg}", headers=asterisk.ari_headers
        ) as hung_up,
    ):
        assert hung_up.status == 204
    ended = await scene.event("supervision_ended", lambda e: e["session_id"] == sid)
    assert ended["reason"] == "call_ended"
    await scene.phones[SUPERVISOR_PHONE].wait_for(
        lambda calls: calls[0].state is PhoneCallState.COMPLETED
    )
    [audit] = await scene.request("GET", f"/api/calls/{scene.call_id}/supervisions")
    assert [m["mode"] for m in audit["modes"]] == ["listen", "whisper", "barge", "listen"]
    assert audit["end_reason"] == "call_ended"
    assert all(m["ended_at"] for m in audit["modes"])
    changes = [e["mode"] for t, e in scene.events if t == "supervision_changed"]
    assert changes == ["listen", "whisper", "barge", "listen"]


async def test_the_supervisor_hanging_up_ends_the_session_not_the_call(
    daemon: Daemon,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
    sandbox_test_dir: Path,
    media: Media,
) -> None:
    scene = await _supervised(
        daemon,
        asterisk,
        operator_phones,
        caller,
        sandbox_test_dir,
        media,
        supervisor_hangs_up_after_ms=1500,
    )
    url = f"/api/calls/{scene.call_id}/supervise"
    sid = (await scene.request("POST", url, {"mode": "whisper"}, status=202))["id"]
    await scene.supervisor_answers()
    await scene.joined(sid, "whisper")
    ended = await scene.event("supervision_ended", lambda e: e["session_id"] == sid)
    assert ended["reason"] == "supervisor_hung_up"
    [rung] = scene.phones[SUPERVISOR_PHONE].calls()
    assert rung.hung_up_by is not None and rung.hung_up_by.name == "THIS_END"
    _both_sides_still_talking(scene)
    await scene.gone(f"/bridges/supervise-{sid}")
    await scene.gone(f"/channels/snoop-{sid}-1")
    # The call is still the operator's, talking.
    record = await daemon.api("GET", f"/api/calls/{scene.call_id}")
    assert record["status"] == "answered"

"""The sandbox, proven end to end before any routing code exists.

A tiny Stasis app written with plain aiohttp stands in for callcenterd: it answers the caller,
rings an operator phone and bridges the two, exactly the ARI calls the daemon will make.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.e2e.ari_watch import AriWatch
from tests.sandbox import (
    AsteriskSandbox,
    Callers,
    OperatorPhones,
    PhoneBehaviour,
    PhoneCallState,
    Side,
)

pytestmark = pytest.mark.e2e

Event = dict[str, Any]


class AriError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status


class MiniStasisApp(AriWatch):
    """Just enough ARI: AriWatch's events, matched on demand, and REST calls."""

    def __init__(self, asterisk: AsteriskSandbox) -> None:
        super().__init__(asterisk, asterisk.ari_app, subscribe_all=False)

    async def request(self, method: str, path: str, **params: str | int) -> Any:
        """ARI REST; a 404 (the channel is already gone) is an expected race, returned as None."""
        url = f"{self._asterisk.ari_url}{path}"
        query = {name: str(value) for name, value in params.items()}
        async with self._session.request(method, url, params=query) as response:
            if response.status == 404:
                return None
            if response.status >= 400:
                raise AriError(response.status, f"{method} {path}: {await response.text()}")
            return await response.json() if response.content_type == "application/json" else None

    async def ring(self, endpoint: str, caller_channel: str | None = None) -> str:
        """Create an operator leg in this app and dial it (3 s ring timeout); returns its id."""
        leg = await self.request(
            "POST", "/channels/create", endpoint=endpoint, app=self._asterisk.ari_app
        )
        # The new channel enters Stasis a moment later; dialing before that answers 409.
        await self.event("StasisStart", on_channel(leg["id"]))
        dial_params: dict[str, str | int] = {"timeout": 3}
        if caller_channel is not None:
            dial_params["caller"] = caller_channel
        await self.request("POST", f"/channels/{leg['id']}/dial", **dial_params)
        return str(leg["id"])


def on_channel(channel_id: str) -> Callable[[Event], bool]:
    return lambda event: event.get("channel", {}).get("id") == channel_id


def dial_of(channel_id: str, status: str) -> Callable[[Event], bool]:
    return lambda event: event["peer"]["id"] == channel_id and event["dialstatus"] == status


async def test_stasis_app_bridges_caller_and_operator(
    asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start(
        {"1001": PhoneBehaviour.answer(after_ms=300, hang_up_after_ms=1000)}
    )
    async with MiniStasisApp(asterisk) as app:
        call = await caller.dial(asterisk.queue_number("support"), caller_number="5551234")
        start = await app.event("StasisStart")
        assert start["args"] == ["support"]
        assert start["channel"]["caller"]["number"] == "5551234"
        caller_channel = start["channel"]["id"]
        await app.request("POST", f"/channels/{caller_channel}/answer")
        bridge = await app.request("POST", "/bridges", type="mixing")
        leg = await app.ring("PJSIP/1001", caller_channel)
        await app.event("Dial", dial_of(leg, "ANSWER"))
        await app.request(
            "POST", f"/bridges/{bridge['id']}/addChannel", channel=f"{caller_channel},{leg}"
        )
        await app.event("StasisEnd", on_channel(leg))
        await app.request("DELETE", f"/channels/{caller_channel}")
        await app.request("DELETE", f"/bridges/{bridge['id']}")
        outcome = await call.outcome()

    assert outcome.exit_code == 0
    assert outcome.answered
    assert outcome.hung_up_by is Side.FAR_END
    [received] = await phones["1001"].wait_for_calls(1)
    assert received.state is PhoneCallState.COMPLETED
    assert received.hung_up_by is Side.THIS_END
    assert received.answered_at is not None
    assert 0.3 <= (received.answered_at - received.invited_at).total_seconds() < 0.5
    # dial(caller=...) gives the operator leg the caller's number: the phone shows who calls.
    assert received.caller_number == "5551234"
    assert outcome.answered_at is not None
    assert outcome.answered_at < received.invited_at  # the app answered the caller first


async def test_without_the_app_the_dialplan_falls_back_to_queue(
    asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start(
        {"1001": PhoneBehaviour.answer(after_ms=300, hang_up_after_ms=1000)}
    )
    async with (
        aiohttp.ClientSession(headers=asterisk.ari_headers) as session,
        session.get(f"{asterisk.ari_url}/applications") as response,
    ):
        # A daemon killed earlier may leave the app listed but inactive (its subscriptions
        # outlive it); Stasis() refuses an inactive app just the same, so the call falls back.
        assert response.status == 200

    call = await caller.dial(asterisk.queue_number("support"), caller_number="5551235")
    outcome = await call.outcome()

    assert outcome.exit_code == 0
    assert outcome.answered
    assert outcome.hung_up_by is Side.FAR_END
    [received] = await phones["1001"].wait_for_calls(1)
    assert received.caller_number == "5551235"
    assert received.answered
    assert received.state is PhoneCallState.COMPLETED
    assert received.hung_up_by is Side.THIS_END


async def test_busy_unanswered_and_unreachable_phones(
    asterisk: AsteriskSandbox, operator_phones: OperatorPhones
) -> None:
    phones = await operator_phones.start(
        {
            "1002": PhoneBehaviour.busy(),
            "1003": PhoneBehaviour.ring_until_cancelled(),
            "1004": PhoneBehaviour.unreachable(),
        }
    )
    async with MiniStasisApp(asterisk) as app:
        # ring() dials with a 3 s timeout, as the daemon's ring timeout will.
        legs = {ext: await app.ring(f"PJSIP/{ext}") for ext in ("1002", "1003")}
        # An unreachable phone fails one of two ways, depending on what Asterisk knows: a
        # contact already qualified as unreachable refuses the channel at once (500), one it
        # has not seen fail yet gets an INVITE nobody answers (cause 19 at the timeout).
        try:
            legs["1004"] = await app.ring("PJSIP/1004")
        except AriError as err:
            assert err.status == 500 and "Allocation failed" in str(err)
        destroyed = {
            ext: await app.event("ChannelDestroyed", on_channel(leg)) for ext, leg in legs.items()
        }
        dial_statuses = {
            ext: [
                e["dialstatus"] for e in app.seen if e["type"] == "Dial" and e["peer"]["id"] == leg
            ]
            for ext, leg in legs.items()
        }

    assert all("ANSWER" not in statuses for statuses in dial_statuses.values())
    assert (destroyed["1002"]["cause"], destroyed["1002"]["cause_txt"]) == (17, "User busy")
    assert [call.state for call in phones["1002"].calls()] == [PhoneCallState.REJECTED]

    assert "RINGING" in dial_statuses["1003"]
    assert destroyed["1003"]["cause"] == 19  # "User alerting, no answer": the dial timed out
    [unanswered] = await phones["1003"].wait_for_calls(1)
    assert unanswered.state is PhoneCallState.CANCELLED

    if "1004" in legs:
        assert "RINGING" not in dial_statuses["1004"]
        assert destroyed["1004"]["cause"] == 19  # nothing answered the INVITE before the timeout
    assert phones["1004"].calls() == []


async def answer_callers(app: MiniStasisApp, count: int) -> list[Event]:
    """Answer the next `count` calls that enter the app; returns their StasisStart events."""
    starts = []
    for _ in range(count):
        start = await app.event("StasisStart", within=30)
        await app.request("POST", f"/channels/{start['channel']['id']}/answer")
        starts.append(start)
    return starts


async def test_a_burst_of_twenty_callers(asterisk: AsteriskSandbox, caller: Callers) -> None:
    numbers = [f"55520{n:02d}" for n in range(20)]
    async with MiniStasisApp(asterisk) as app:
        calls = await caller.burst(asterisk.queue_number("sales"), numbers, hang_up_after_ms=500)
        starts = await answer_callers(app, len(numbers))
        outcomes = [await call.outcome() for call in calls]

    assert sorted(start["channel"]["caller"]["number"] for start in starts) == numbers
    assert all(start["args"] == ["sales"] for start in starts)
    assert [o.exit_code for o in outcomes] == [0] * len(numbers)
    assert all(o.answered and o.hung_up_by is Side.THIS_END for o in outcomes)
    assert len({o.call_id for o in outcomes}) == len(numbers)


async def test_bulk_calls_at_a_rate(asterisk: AsteriskSandbox, caller: Callers) -> None:
    async with MiniStasisApp(asterisk) as app:
        answering = asyncio.create_task(answer_callers(app, 10))
        result = await caller.bulk(
            asterisk.queue_number("billing"),
            calls_per_second=20,
            total_calls=10,
            hang_up_after_ms=200,
            within=30,
        )
        await answering

    assert result.exit_code == 0
    assert len(result.calls) == 10
    assert all(call.answered and call.hung_up_by is Side.THIS_END for call in result.calls)
    assert result.stats_file.read_text().count("\n") >= 2  # header + at least one sample


async def test_restart_keeps_ports_credentials_and_config(
    asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    phones = await operator_phones.start(
        {"1001": PhoneBehaviour.answer(after_ms=100, hang_up_after_ms=500)}
    )
    before = asterisk.describe()

    asterisk.restart()
    await operator_phones.sync_with_asterisk()
    call = await caller.dial(asterisk.queue_number("vip"), caller_number="5551299")
    outcome = await call.outcome()

    after = asterisk.describe()
    assert after["pid"] != before["pid"]
    assert {k: v for k, v in after.items() if k != "pid"} == {
        k: v for k, v in before.items() if k != "pid"
    }
    assert outcome.exit_code == 0  # through the fallback Queue(vip): the config is whole
    [received] = await phones["1001"].wait_for_calls(1)
    assert received.caller_number == "5551299"


async def test_caller_who_gives_up_while_ringing(
    asterisk: AsteriskSandbox, caller: Callers
) -> None:
    async with MiniStasisApp(asterisk) as app:
        call = await caller.dial(
            asterisk.queue_number("q1"), caller_number="5551300", cancel_after_ms=500
        )
        start = await app.event("StasisStart")
        caller_channel = start["channel"]["id"]
        await app.request("POST", f"/channels/{caller_channel}/ring")
        await app.event("StasisEnd", on_channel(caller_channel))
        outcome = await call.outcome()

    assert outcome.exit_code == 0
    assert outcome.cancelled
    assert not outcome.answered
    assert outcome.final_status == 487
    assert outcome.ringing_at is not None and outcome.invite_sent_at is not None
    assert outcome.cancelled_at is not None
    assert outcome.invite_sent_at < outcome.ringing_at < outcome.cancelled_at
    cancelled_after = (outcome.cancelled_at - outcome.invite_sent_at).total_seconds()
    assert 0.5 <= cancelled_after < 0.6  # the 180 in between did not restart the wait


async def ami_login(asterisk: AsteriskSandbox, secret: str) -> str:
    """Log in to AMI; returns the Response header's value."""
    reader, writer = await asyncio.open_connection(asterisk.ami_host, asterisk.ami_port)
    try:
        await reader.readline()  # "Asterisk Call Manager/..."
        login = f"Action: Login\r\nUsername: {asterisk.ami_username}\r\nSecret: {secret}\r\n\r\n"
        writer.write(login.encode())
        reply = (await reader.readuntil(b"\r\n\r\n")).decode()
    finally:
        writer.close()
        await writer.wait_closed()
    return next(line.split(":", 1)[1].strip() for line in reply.splitlines() if ":" in line)


async def test_ami_takes_the_sandbox_credentials(asterisk: AsteriskSandbox) -> None:
    assert await ami_login(asterisk, asterisk.ami_secret) == "Success"
    assert await ami_login(asterisk, "change-me-ami") == "Error"  # the sample's placeholder

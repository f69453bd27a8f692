"""The call-control port against the sandbox Asterisk: each action, and what Asterisk says.

No daemon here: the test registers the Stasis application itself through an `AriLink`, so
a caller dialing a queue number lands in it, and drives the call through `AriCallControl`
alone, checking each action by the ARI events it causes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from callcenterd.telephony.ari import AriEndpoint
from callcenterd.telephony.ari_control import AriCallControl
from callcenterd.telephony.ari_link import AriLink
from callcenterd.telephony.errors import AriNotFound, AriRequestFailed
from tests.sandbox import AsteriskSandbox, Callers

pytestmark = pytest.mark.e2e

Frame = dict[str, Any]


class Frames:
    """Every ARI event the application gets, to wait for the one a step expects."""

    def __init__(self) -> None:
        self._seen: list[Frame] = []
        self._arrived = asyncio.Condition()

    def deliver(self, node: str, frame: Frame) -> None:
        self._seen.append(frame)
        asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        async with self._arrived:
            self._arrived.notify_all()

    async def wait_for(self, what: Callable[[Frame], bool], within: float = 10.0) -> Frame:
        async def first() -> Frame:
            async with self._arrived:
                while True:
                    found = next((f for f in self._seen if what(f)), None)
                    if found is not None:
                        return found
                    await self._arrived.wait()

        return await asyncio.wait_for(first(), within)


def of_type(kind: str, **fields: str) -> Callable[[Frame], bool]:
    def matches(frame: Frame) -> bool:
        if frame.get("type") != kind:
            return False
        return all(
            frame.get("channel", {}).get(key) == value
            or frame.get("playback", {}).get(key) == value
            for key, value in fields.items()
        )

    return matches


@asynccontextmanager
async def application(asterisk: AsteriskSandbox) -> AsyncIterator[tuple[AriCallControl, Frames]]:
    frames = Frames()
    connected = asyncio.Event()

    async def on_connected(_: AriCallControl) -> None:
        connected.set()

    async with aiohttp.ClientSession() as session:
        link = AriLink(session, lambda: datetime.now(UTC), frames.deliver, on_connected)
        endpoint = AriEndpoint(
            asterisk.http_url, asterisk.ari_username, asterisk.ari_password, asterisk.ari_app, 5.0
        )
        await link.configure(endpoint)
        try:
            await asyncio.wait_for(connected.wait(), 10)
            assert link.connected_control is not None
            yield link.connected_control, frames
        finally:
            await link.stop()


async def test_every_call_action_does_what_asterisk_reports(
    asterisk: AsteriskSandbox, caller: Callers
) -> None:
    async with application(asterisk) as (control, frames):
        await caller.dial(asterisk.queue_number("support"), "5557001", hang_up_after_ms=30_000)
        entered = await frames.wait_for(of_type("StasisStart"))
        channel_id = entered["channel"]["id"]
        assert channel_id in await control.app_channel_ids()
        channel = await control.channel(channel_id)
        assert channel.caller_number == "5557001"
        assert await control.variable(channel_id, "QUEUE") == "support"

        await control.answer(channel_id)
        await frames.wait_for(of_type("ChannelStateChange", id=channel_id, state="Up"))

        # Playback: Asterisk's own sounds and number media, reported started then finished.
        await control.play(channel_id, "pb-1", ["sound:beep", "digits:12"])
        await frames.wait_for(of_type("PlaybackStarted", id="pb-1"))
        await frames.wait_for(of_type("PlaybackFinished", id="pb-1"), within=15)

        # A playback cut short: stopped at once, still reported finished.
        await control.play(channel_id, "pb-2", ["sound:queue-periodic-announce"])
        await frames.wait_for(of_type("PlaybackStarted", id="pb-2"))
        await control.stop_playback("pb-2")
        await frames.wait_for(of_type("PlaybackFinished", id="pb-2"))

        # Music on hold, in and out of a holding bridge.
        await control.create_bridge("cc-hold", "holding")
        await control.add_to_bridge("cc-hold", channel_id)
        await control.start_moh(channel_id, "default")
        held = {b.id: b for b in await control.bridges()}["cc-hold"]
        assert held.kind == "holding" and held.channel_ids == {channel_id}
        await control.stop_moh(channel_id)
        await control.remove_from_bridge("cc-hold", channel_id)
        await control.destroy_bridge("cc-hold")
        assert "cc-hold" not in {b.id for b in await control.bridges()}

        # A snoop channel (how a supervisor listens) enters the application beside the caller.
        await control.snoop(channel_id, "cc-snoop", "both", "none")
        await frames.wait_for(of_type("StasisStart", id="cc-snoop"))
        assert "cc-snoop" in await control.app_channel_ids()
        await control.hangup("cc-snoop")
        await frames.wait_for(of_type("StasisEnd", id="cc-snoop"))

        # A refused action and a gone channel are told apart.
        with pytest.raises(AriRequestFailed):
            await control.ring(channel_id, 5, None)  # not a created, undialed channel
        with pytest.raises(AriNotFound):
            await control.channel("cc-never-there")
        with pytest.raises(AriNotFound):
            await control.answer("cc-never-there")
        await control.hangup(channel_id)
        await frames.wait_for(of_type("StasisEnd", id=channel_id))

"""A callback's telephony: the confirmation before the caller's channel is hung up, and the
dial of the caller once their operator has answered (services/call_actions.py runs these on
its lanes).

The caller is dialed like an operator leg: a channel created into the application (so its
`Dial` events say busy, no answer, answer) and dialed, through the configured endpoint
(`[callbacks] endpoint`, `{number}` the caller's) with the queue's caller id. From then on
that channel is the call's caller channel: the engine's ordinary `ConnectCall` bridges it
with the operator's leg.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from callcenterd.domain import commands as cmd
from callcenterd.domain.events import LegFailure
from callcenterd.services.live_calls import LiveCall, LiveCalls
from callcenterd.telephony import announcements
from callcenterd.telephony.call_control import CallControl
from callcenterd.telephony.errors import AriNotFound, TelephonyError
from callcenterd.telephony.translate import LEG_MARK

log = structlog.get_logger(__name__)

# The confirmation is a few seconds long; a PlaybackFinished that never comes (the caller
# hung up first, a lost event) does not keep the channel up longer than this.
CONFIRM_AT_MOST = 15.0


@dataclass(frozen=True, slots=True)
class CallbackDial:
    """How callers are dialed back (from `[callbacks]` in the settings)."""

    endpoint: Callable[[str], str]  # the caller's number -> the channel to dial
    caller_id: str = ""  # when the queue has no number of its own

    def caller_id_for(self, queue_caller_id: str | None) -> str:
        return queue_caller_id or self.caller_id


def confirm_playback_of(call_id: str) -> str:
    return f"callback-{call_id}"


async def confirm_and_hang_up(
    control: CallControl, live: LiveCall, finished: Callable[[str], asyncio.Event]
) -> None:
    """Stop the offer if it still plays, say the callback is booked, then hang up."""
    if live.playback_id is not None:
        with contextlib.suppress(AriNotFound):
            await control.stop_playback(live.playback_id)
        live.playback_id = None
    playback_id = confirm_playback_of(live.call_id)
    done = finished(playback_id)
    try:
        await control.play(live.channel_id, playback_id, announcements.callback_confirmed())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), CONFIRM_AT_MOST)
    except AriNotFound:
        return  # the caller hung up already
    with contextlib.suppress(AriNotFound):
        await control.hangup(live.channel_id)


def take_caller_channel(live: LiveCalls, dial: cmd.DialCallback, node: str) -> None:
    """From now on the channel dialing the caller is the call's caller channel (and a leg, so
    that its Dial events are read as a leg's)."""
    legs = {dial.operator_leg_id: dial.operator_id, dial.dial_leg_id: dial.operator_id}
    previous = live.remove(dial.call_id)
    call = LiveCall(dial.call_id, dial.dial_leg_id, dial.number, node, legs=legs)
    if previous is not None:
        call.talk_bridge = previous.talk_bridge
    live.add(call)


async def dial_caller(
    control: CallControl,
    dial: cmd.DialCallback,
    how: CallbackDial,
    ready: asyncio.Event,
    failed: Callable[[str, LegFailure], object],
) -> None:
    caller_id = how.caller_id_for(dial.caller_id)
    # What the caller sees comes from the dialed channel's connected line (PJSIP's From).
    names = ("CONNECTEDLINE(num)", "CONNECTEDLINE(name)", "CALLERID(num)", "CALLERID(name)")
    variables = dict.fromkeys(names, caller_id) if caller_id else {}
    try:
        await control.create_leg(
            dial.dial_leg_id, how.endpoint(dial.number), f"{LEG_MARK},{dial.call_id}", variables
        )
        await asyncio.wait_for(ready.wait(), control.request_timeout)
        await control.ring(dial.dial_leg_id, math.ceil(dial.timeout), None)
    except (TelephonyError, TimeoutError) as err:
        log.warning("callback_dial_failed", call_id=dial.call_id, error=str(err))
        with contextlib.suppress(TelephonyError):
            await control.hangup(dial.dial_leg_id)
        failed(dial.dial_leg_id, LegFailure.UNREACHABLE)

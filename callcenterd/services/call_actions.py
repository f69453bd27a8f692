"""The engine's telephony commands, carried out through the call-control port.

Each runs on an ordered lane: one per call, and one per operator leg, so ringing an
operator never waits for the caller's answer and music on hold, and a leg's cancel always
follows its creation. A command never waits for the store: the dispatcher's `submit()`
awaits facts, not these.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog

from callcenterd.domain import commands as cmd
from callcenterd.domain.events import LegFailure
from callcenterd.errors import CallcenterError
from callcenterd.services import callback_calls
from callcenterd.services.call_records import CallRecorder
from callcenterd.services.live_calls import LiveCall, LiveCalls, hold_bridge_of, talk_bridge_of
from callcenterd.tasks import SerialLanes
from callcenterd.telephony import announcements
from callcenterd.telephony.call_control import DEFAULT_NODE, CallControl, EndpointState
from callcenterd.telephony.errors import AriNotFound, AriRequestFailed, TelephonyError
from callcenterd.telephony.translate import LEG_MARK

log = structlog.get_logger(__name__)

# node -> its call control, while its ARI link is up
Controls = Callable[[str], CallControl | None]
Action = Callable[[CallControl], Awaitable[None]]
TelephonyCommand = (
    cmd.RingOperator
    | cmd.AnswerCaller
    | cmd.HoldCaller
    | cmd.GreetCaller
    | cmd.AnnounceWait
    | cmd.CancelLeg
    | cmd.ConnectCall
    | cmd.HangupCaller
    | cmd.ContinueInDialplan
    | cmd.ParkCaller
    | cmd.ResumeCaller
    | cmd.JoinLeg
    | cmd.SendToDialplan
    | cmd.OfferCallback
    | cmd.ConfirmCallback
    | cmd.DialCallback
)


class CallActions:
    def __init__(
        self,
        live: LiveCalls,
        controls: Controls,
        records: CallRecorder,
        clock: Callable[[], datetime],
        leg_failed: Callable[[str, LegFailure], object],
        *,
        observe_routing: Callable[[float], None] | None = None,
        callback_dial: callback_calls.CallbackDial | None = None,
    ) -> None:
        self._live = live
        self._callback_dial = callback_dial or callback_calls.CallbackDial(
            lambda number: f"PJSIP/{number}"
        )
        # Set when a playback we wait for (a callback's confirmation) is over.
        self._playback_done: dict[str, asyncio.Event] = {}
        self._controls = controls
        self._records = records
        self._clock = clock
        self._leg_failed = leg_failed  # back to the engine: the leg could not be rung
        self._lanes = SerialLanes(expected=(CallcenterError, TelephonyError))
        # Set when a created leg's StasisStart arrives: only then may it be dialed.
        self._leg_ready: dict[str, asyncio.Event] = {}
        self.record_calls = False
        # Routing latency (metrics): a call's entry into its queue, on the monotonic clock,
        # until its first operator leg is dialed.
        self._observe_routing = observe_routing
        self._queued_at: dict[str, float] = {}

    def pending(self) -> int:
        return self._lanes.pending()

    async def drain(self) -> None:
        await self._lanes.drain()

    def carry_out(self, command: TelephonyCommand) -> None:
        match command:
            case cmd.RingOperator():
                self._live.add_leg(command.call_id, command.leg_id, command.operator_id)
                node = self._node_of(command.call_id)
                self._run(command.leg_id, node, lambda c: self._ring(c, command))
            case cmd.AnswerCaller(call_id=call_id):
                self._on_caller(call_id, self._answer)
            case cmd.HoldCaller(call_id=call_id, music_class=music):
                self._on_caller(call_id, lambda c, live: self._hold(c, live, music))
            case cmd.GreetCaller(call_id=call_id, sound=sound):
                media = announcements.greeting(sound)
                self._on_caller(call_id, lambda c, live: self._announce(c, live, media))
            case cmd.AnnounceWait(call_id=call_id, position=position, wait_seconds=wait):
                media = announcements.wait_announcement(position, wait)
                self._on_caller(call_id, lambda c, live: self._announce(c, live, media))
            case cmd.CancelLeg(call_id=call_id, leg_id=leg_id):
                self._run(leg_id, self._node_of(call_id), lambda c: _quietly(c.hangup(leg_id)))
            case cmd.ConnectCall():
                self._on_caller(command.call_id, lambda c, live: self._connect(c, live, command))
            case cmd.HangupCaller(call_id=call_id):
                self._on_caller(call_id, lambda c, live: _quietly(c.hangup(live.channel_id)))
            case cmd.ContinueInDialplan(call_id=call_id):
                self._on_caller(
                    call_id, lambda c, live: _quietly(c.continue_in_dialplan(live.channel_id))
                )
            case cmd.ParkCaller(call_id=call_id):
                self._on_caller(call_id, lambda c, live: self._park(c, live, command))
            case cmd.ResumeCaller(call_id=call_id):
                self._on_caller(call_id, self._resume)
            case cmd.JoinLeg(call_id=call_id, leg_id=leg_id):
                self._on_caller(call_id, lambda c, live: self._join(c, live, leg_id))
            case cmd.SendToDialplan(call_id=call_id, context=context, extension=extension):
                self._on_caller(
                    call_id,
                    lambda c, live: _quietly(
                        c.continue_in_dialplan(live.channel_id, context, extension)
                    ),
                )
            case cmd.OfferCallback(call_id=call_id):
                media = announcements.callback_offer()
                self._on_caller(call_id, lambda c, live: self._announce(c, live, media))
            case cmd.ConfirmCallback(call_id=call_id):
                self._on_caller(
                    call_id,
                    lambda c, live: callback_calls.confirm_and_hang_up(c, live, self._awaited),
                )
            case cmd.DialCallback():
                self._dial_back(command)

    def _dial_back(self, dial: cmd.DialCallback) -> None:
        node = self._node_of(dial.call_id)
        callback_calls.take_caller_channel(self._live, dial, node)
        ready = self.leg_in_stasis(dial.dial_leg_id)

        async def job(control: CallControl) -> None:
            try:
                await callback_calls.dial_caller(
                    control, dial, self._callback_dial, ready, self._leg_failed
                )
            finally:
                self._leg_ready.pop(dial.dial_leg_id, None)

        self._run(dial.dial_leg_id, node, job)

    def _awaited(self, playback_id: str) -> asyncio.Event:
        done = self._playback_done.get(playback_id)
        if done is None:
            done = self._playback_done[playback_id] = asyncio.Event()
        return done

    def playback_finished(self, playback_id: str) -> None:
        """Asterisk says a playback is over: whoever waits for it goes on."""
        done = self._playback_done.pop(playback_id, None)
        if done is not None:
            done.set()

    def queued(self, call_id: str) -> None:
        """The call entered a queue: its routing latency runs from now."""
        self._queued_at[call_id] = time.monotonic()

    def ended(self, call_id: str) -> None:
        """After the call's other actions (its lane): forget it, and tear its bridges down."""
        self._queued_at.pop(call_id, None)
        self._lanes.run(f"ari:{call_id}", lambda: self._forget(call_id))

    def end_orphan(self, call: LiveCall) -> None:
        """Hang up a caller whose conversation cannot go on (its operator is gone)."""
        self._run(call.call_id, call.node, lambda c: self._hang_up_orphan(c, call))

    def destroy_bridge(self, call: LiveCall, bridge_id: str) -> None:
        """Tear down one of the call's bridges, in turn with its other actions."""
        self._run(call.call_id, call.node, lambda c: _quietly(c.destroy_bridge(bridge_id)))

    def leg_in_stasis(self, leg_id: str) -> asyncio.Event:
        ready = self._leg_ready.get(leg_id)
        if ready is None:
            ready = self._leg_ready[leg_id] = asyncio.Event()
        return ready

    def probe_endpoint(
        self, lane: str, extension: str, seen: Callable[[EndpointState], None]
    ) -> None:
        """Ask a phone's state once (state changes are pushed, but it may have changed
        before we knew the extension)."""

        async def probe() -> None:
            control = self._controls(DEFAULT_NODE)
            if control is None:
                return  # the dispatcher lists every endpoint when the link comes up
            with contextlib.suppress(AriNotFound):
                seen(await control.endpoint("PJSIP", extension))

        self._lanes.run(lane, probe)

    # --- lanes --------------------------------------------------------------------------------
    def _node_of(self, call_id: str) -> str:
        live = self._live.get(call_id)
        return live.node if live is not None else DEFAULT_NODE

    def _run(self, lane: str, node: str, action: Action) -> None:
        """Queue an action on a lane: a call id, or a leg id for that leg's own actions."""

        async def job() -> None:
            control = self._controls(node)
            if control is None:
                log.warning("asterisk_unavailable_for_action", lane=lane, node=node)
                return
            await action(control)

        self._lanes.run(f"ari:{lane}", job)

    def _on_caller(
        self, call_id: str, action: Callable[[CallControl, LiveCall], Awaitable[None]]
    ) -> None:
        """An action on a live call's caller (nothing when the call is already over)."""
        live = self._live.get(call_id)
        if live is not None:
            self._run(call_id, live.node, lambda c: action(c, live))

    # --- the actions --------------------------------------------------------------------------
    async def _answer(self, control: CallControl, live: LiveCall) -> None:
        await _quietly(control.answer(live.channel_id))
        live.answered = True

    async def _hold(self, control: CallControl, live: LiveCall, music_class: str) -> None:
        if live.talk_bridge is not None:
            return
        bridge = hold_bridge_of(live.call_id)
        await control.create_bridge(bridge, "holding")
        live.holding_bridge = bridge
        await _quietly(control.add_to_bridge(bridge, live.channel_id))
        # Music on the channel itself: a bridge's MOH needs an announcer channel, which adds
        # a Local channel per call for no benefit.
        await _quietly(control.start_moh(live.channel_id, music_class))

    async def _announce(self, control: CallControl, live: LiveCall, media: list[str]) -> None:
        """Play over the music: in a holding bridge, Asterisk pauses the channel's music for
        the playback and resumes it after (checked on the sandbox: MusicOnHoldStop, then
        Start again after PlaybackFinished). Cut short if an operator answers first."""
        if live.talk_bridge is not None:
            return
        live.playbacks += 1
        live.playback_id = f"announce-{live.call_id}-{live.playbacks}"
        await _quietly(control.play(live.channel_id, live.playback_id, media))

    async def _ring(self, control: CallControl, ring: cmd.RingOperator) -> None:
        live = self._live.get(ring.call_id)
        variables = {"CALLERID(num)": ring.caller_number, "CALLERID(name)": ring.caller_number}
        ready = self.leg_in_stasis(ring.leg_id)
        try:
            await control.create_leg(
                ring.leg_id, f"PJSIP/{ring.extension}", f"{LEG_MARK},{ring.call_id}", variables
            )
            # A created channel enters the app a moment later; dialing it before is a 409.
            await asyncio.wait_for(ready.wait(), control.request_timeout)
            # Asterisk's own dial timeout is a safety net; the engine times the ring.
            await control.ring(
                ring.leg_id, math.ceil(ring.timeout) + 5, live.channel_id if live else None
            )
            self._routed(ring.call_id)
        except (TelephonyError, TimeoutError) as err:
            log.warning("ring_failed", call_id=ring.call_id, leg_id=ring.leg_id, error=str(err))
            with contextlib.suppress(TelephonyError):
                await control.hangup(ring.leg_id)
            self._leg_failed(ring.leg_id, LegFailure.UNREACHABLE)
        finally:
            self._leg_ready.pop(ring.leg_id, None)

    def _routed(self, call_id: str) -> None:
        """An operator's phone rings for the call: the first time since it was queued, that
        is its routing latency."""
        queued_at = self._queued_at.pop(call_id, None)
        if queued_at is not None and self._observe_routing is not None:
            self._observe_routing(time.monotonic() - queued_at)

    async def _connect(
        self, control: CallControl, live: LiveCall, connect: cmd.ConnectCall
    ) -> None:
        bridge = talk_bridge_of(connect.call_id)
        if live.playback_id is not None:  # no announcement into the conversation
            await _quietly(control.stop_playback(live.playback_id))
            live.playback_id = None
        if live.talk_bridge is None:  # ARI refuses to create a bridge id twice
            await control.create_bridge(bridge, "mixing")
            live.talk_bridge = bridge
        # Into the talk bridge straight from the holding one: adding a channel to a bridge
        # takes it out of the Stasis bridge it is in (no removeChannel first).
        if live.holding_bridge is not None:
            await _quietly(control.stop_moh(live.channel_id))
        if not live.answered:  # answered by now unless it was connected before AnswerCaller
            await self._answer(control, live)
        await _quietly(control.add_to_bridge(bridge, live.channel_id))
        await _quietly(control.add_to_bridge(bridge, connect.leg_id))
        if live.holding_bridge is not None:
            await _quietly(control.destroy_bridge(live.holding_bridge))
            live.holding_bridge = None
        if self.record_calls:
            await _quietly(control.record_bridge(bridge, connect.call_id))
            at, call_id = self._clock(), connect.call_id
            self._records.later(
                call_id, lambda: self._records.recording_started(call_id, at, call_id)
            )

    # --- hold and transfers ------------------------------------------------------------------
    async def _park(self, control: CallControl, live: LiveCall, park: cmd.ParkCaller) -> None:
        """The caller out of the conversation, into a holding bridge with music."""
        if live.talk_bridge is not None:
            await _out_of_bridge(control, live.talk_bridge, live.channel_id)
            if not park.keep_talk:
                await _quietly(control.destroy_bridge(live.talk_bridge))
                live.talk_bridge = None
        if live.holding_bridge is None:
            bridge = hold_bridge_of(live.call_id)
            await control.create_bridge(bridge, "holding")
            live.holding_bridge = bridge
            await _quietly(control.add_to_bridge(bridge, live.channel_id))
        await _quietly(control.start_moh(live.channel_id, park.music_class))

    async def _resume(self, control: CallControl, live: LiveCall) -> None:
        """Music off, the caller back with whoever is in the talk bridge."""
        await _quietly(control.stop_moh(live.channel_id))
        if live.holding_bridge is not None:
            await _quietly(control.remove_from_bridge(live.holding_bridge, live.channel_id))
            await _quietly(control.destroy_bridge(live.holding_bridge))
            live.holding_bridge = None
        if live.talk_bridge is not None:
            await _quietly(control.add_to_bridge(live.talk_bridge, live.channel_id))

    async def _join(self, control: CallControl, live: LiveCall, leg_id: str) -> None:
        """A consulted operator's answered leg into the talk bridge, with the operator."""
        if live.talk_bridge is not None:
            await _quietly(control.add_to_bridge(live.talk_bridge, leg_id))

    async def _forget(self, call_id: str) -> None:
        live = self._live.remove(call_id)
        control = self._controls(live.node) if live is not None else None
        if live is None or control is None:
            return
        for bridge in (live.holding_bridge, live.talk_bridge):
            if bridge is not None:
                await _quietly(control.destroy_bridge(bridge))

    async def _hang_up_orphan(self, control: CallControl, call: LiveCall) -> None:
        await _quietly(control.hangup(call.channel_id))
        if call.holding_bridge is not None:
            await _quietly(control.destroy_bridge(call.holding_bridge))


async def _quietly(request: Awaitable[None]) -> None:
    """A channel or bridge already gone is the expected race, not an error."""
    with contextlib.suppress(AriNotFound):
        await request


async def _out_of_bridge(control: CallControl, bridge_id: str, channel_id: str) -> None:
    """The channel out of the bridge. Asterisk answers 422 when it is not in it: what was
    wanted (a hold finished after a restart finds the caller out of every bridge)."""
    with contextlib.suppress(AriNotFound, AriRequestFailed):
        await control.remove_from_bridge(bridge_id, channel_id)

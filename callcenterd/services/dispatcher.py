"""The dispatcher: Asterisk's events in, the engine decides, its commands carried out.

translate (telephony/translate.py) -> engine (routing/) -> execute: telephony actions go
to the call-control port, facts to the call recorder (store, then publish). The engine is
synchronous and fast, so every event is handled inline on the event loop (asyncio already
serialises them). What follows is I/O, queued on ordered lanes: a telephony lane per call
(and one per operator leg, so ringing never waits for the caller's music) and the
recorder's lane per call. Ringing an operator therefore never waits for the disk, and a
call's record is always written before its event is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog

from callcenterd.contract.schemas import SystemSettings
from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.clock import to_iso
from callcenterd.domain.commands import Command
from callcenterd.domain.events import LegFailure
from callcenterd.domain.queues import OperatorProfile, QueueConfig
from callcenterd.errors import CallcenterError, DatabaseUnavailable
from callcenterd.events import payloads as out
from callcenterd.events.bus import EventBus
from callcenterd.routing import RoutingEngine
from callcenterd.services import reconciliation as plan
from callcenterd.services.call_records import RECORD_RETRY_DELAYS, CallRecorder
from callcenterd.services.live_calls import LiveCall, LiveCalls, hold_bridge_of, talk_bridge_of
from callcenterd.store.calls import CallEnd, OpenCall, OperatorStatusWriter
from callcenterd.tasks import SerialLanes, retrying
from callcenterd.telephony.call_control import DEFAULT_NODE, CallControl, EndpointState
from callcenterd.telephony.errors import AriNotFound, AriRequestFailed, TelephonyError
from callcenterd.telephony.translate import (
    LEG_MARK,
    NOISE,
    CallerEntered,
    CallerLeft,
    LegInStasis,
    translate,
)

log = structlog.get_logger(__name__)

Action = Callable[[CallControl], Awaitable[None]]
# node -> its call control, while its ARI link is up
Controls = Callable[[str], CallControl | None]
CallFact = cmd.RingOperator | cmd.CallQueued | cmd.LegEnded | cmd.CallAnswered | cmd.CallEnded
# Operator phones' reachability comes from their PJSIP endpoints' state.
ENDPOINT_SOURCE = "endpoint:PJSIP"


class Dispatcher:
    def __init__(
        self,
        engine: RoutingEngine,
        records: CallRecorder,
        operators: OperatorStatusWriter,
        bus: EventBus,
        clock: Callable[[], datetime],
        controls: Controls,
        *,
        observe_routing: Callable[[float], None] | None = None,
    ) -> None:
        self._engine = engine
        self._records = records
        self._operators = operators
        self._bus = bus
        self._clock = clock
        self._controls = controls
        self._lanes = SerialLanes(expected=(CallcenterError, TelephonyError))
        self._live = LiveCalls()
        self._extensions: dict[str, str] = {}  # extension -> operator id
        # Set when a created leg's StasisStart arrives: only then may it be dialed.
        self._leg_ready: dict[str, asyncio.Event] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.record_calls = False
        # Routing latency (metrics): a call's entry into its queue, on the monotonic clock,
        # until its first operator leg is dialed.
        self._observe_routing = observe_routing
        self._queued_at: dict[str, float] = {}

    @property
    def engine(self) -> RoutingEngine:
        """Read-only use: live figures and tests. Changes go through submit()."""
        return self._engine

    def operator_of_extension(self, extension: str) -> str | None:
        return self._extensions.get(extension)

    def operators_on(self, channel_id: str) -> set[str]:
        """Operators taking part in the call a channel belongs to (caller or leg)."""
        live = self._live.of_channel(channel_id)
        if live is None:
            return set()
        involved = set(live.legs.values())
        call = self._engine.calls.get(live.call_id)
        if call is not None and call.operator_id is not None:
            involved.add(call.operator_id)
        return involved

    # --- inputs -------------------------------------------------------------------------------
    async def submit(self, event: ev.Event) -> None:
        """From services: returns once the resulting facts are stored."""
        await asyncio.gather(*self._feed(event))

    async def apply_settings(self, settings: SystemSettings) -> None:
        self.record_calls = settings.call_recording
        await self.submit(
            ev.SettingsChanged(
                settings.auto_answer_delay, settings.max_call_duration, settings.queue_timeout
            )
        )

    def load(self, queues: list[QueueConfig], operators: list[OperatorProfile]) -> None:
        for operator in operators:
            self._feed(ev.OperatorUpserted(operator))
        for queue in queues:
            self._feed(ev.QueueUpserted(queue))

    def on_ari_event(self, node: str, frame: dict[str, Any]) -> None:
        for item in translate(frame, self._live.is_leg):
            match item:
                case CallerEntered():
                    self._caller_entered(node, item)
                case CallerLeft(channel_id=channel_id):
                    call_id = self._live.of_caller(channel_id)
                    if call_id is not None:
                        self._feed(ev.CallerHungUp(call_id))
                case EndpointState():
                    self._endpoint_changed(item)
                case LegInStasis(leg_id=leg_id):
                    self._leg_in_stasis(leg_id).set()
                case _:
                    self._feed(item)

    async def on_ari_connected(self, control: CallControl) -> None:
        with contextlib.suppress(TelephonyError):
            await control.drop_event_types(sorted(NOISE))
        try:
            await control.subscribe(ENDPOINT_SOURCE)
            for endpoint in await control.endpoints("PJSIP"):
                self._endpoint_changed(endpoint)
        except TelephonyError as err:
            log.warning("endpoint_states_unavailable", error=str(err))
        try:
            await self._reconcile(control)
        except (CallcenterError, TelephonyError) as err:
            log.error("reconcile_failed", error=str(err))

    async def release(self, control: CallControl | None) -> None:
        """Before disconnecting: drop our endpoint subscription, which would otherwise keep
        the (inactive) application registered in Asterisk after we are gone."""
        if control is not None:
            with contextlib.suppress(TelephonyError):
                await control.unsubscribe(ENDPOINT_SOURCE)

    async def settled(self) -> None:
        """Until everything the events so far caused is done: Asterisk actions, records."""
        while self._lanes.pending() or self._records.pending():
            await self._lanes.drain()
            await self._records.drain()

    async def stop(self, within: float = 10.0) -> None:
        """Finish what is queued, for at most `within` seconds.

        Calls stay in Asterisk: talking ones go on, waiting ones keep their music, and the
        next start re-adopts them. New calls meanwhile fail Stasis() at once (the app is not
        active) and the dialplan's fallback takes them.
        """
        if self._timer is not None:
            self._timer.cancel()
        try:
            await asyncio.wait_for(self.settled(), within)
        except TimeoutError:
            log.error(
                "stop_timed_out", pending_lanes=self._lanes.pending() + self._records.pending()
            )

    # --- recovery: after a restart or a lost event stream -------------------------------------
    async def _reconcile(self, control: CallControl) -> None:
        """Make the store, the engine and Asterisk agree again (services/reconciliation.py)."""
        in_app = await control.app_channel_ids()
        bridges = {bridge.id: bridge.channel_ids for bridge in await control.bridges()}
        records = await self._records.open_calls()
        live = {call.call_id: call for call in self._live if call.node == control.node}
        snapshot = plan.AsteriskSnapshot(frozenset(in_app), bridges)
        actions = plan.reconcile(snapshot, records, live, self._live.known_channels())
        now = self._clock()
        replays: list[ev.Event] = []
        for action in actions:
            match action:
                case plan.Resync(legs_gone=legs):
                    replays += [ev.LegHungUp(leg_id) for leg_id in legs]
                case plan.LostWhileAway(call_id=call_id, channel_id=channel_id):
                    self._note(call_id, "lost", {"channel_id": channel_id})
                    replays.append(ev.CallLost(call_id))
                case plan.ResumeTalk() | plan.EndOrphaned() | plan.Requeue():
                    self._adopt(control.node, action)
                case plan.CloseLost(record=record):
                    self._close_lost(record, now)
                case plan.LookAtStray(channel_id=channel_id):
                    # Strays come last: the records' replays go first, as they happened.
                    for event in replays:
                        self._feed(event)
                    replays = []
                    await self._stray(control, channel_id)
        for event in replays:
            self._feed(event)
        # Adoption used a snapshot: a channel that hung up since then is ended now.
        for channel_id, call_id in self._live.callers():
            with contextlib.suppress(AriNotFound):
                await control.channel(channel_id)
                continue
            self._feed(ev.CallerHungUp(call_id))
        log.info("reconciled", open_records=len(records), in_app=len(in_app))

    def _adopt(self, node: str, action: plan.ResumeTalk | plan.EndOrphaned | plan.Requeue) -> None:
        record = action.record
        call = LiveCall(record.id, record.channel_id, record.caller_number, node)
        if action.holding:
            call.holding_bridge = hold_bridge_of(record.id)
        self._live.add(call)
        self._note(record.id, "adopted", {"status": record.status})
        arrived = record.start_time.timestamp()
        match action:
            case plan.ResumeTalk(leg_id=leg_id):
                assert record.operator_id is not None and record.queue_id is not None
                call.talk_bridge = talk_bridge_of(record.id)
                self._live.add_leg(record.id, leg_id, record.operator_id)
                answered = record.answer_time or record.start_time
                self._feed(
                    ev.CallResumed(
                        record.id,
                        record.caller_number,
                        record.queue_id,
                        arrived,
                        record.operator_id,
                        leg_id,
                        answered.timestamp(),
                    )
                )
                log.info("call_resumed", call_id=record.id, operator_id=record.operator_id)
            case plan.EndOrphaned():
                self._live.remove(record.id)
                self._telephony(record.id, node, lambda c: self._cleanup_orphan(c, call))
                self._close_lost(record, self._clock())
            case plan.Requeue():
                queue = self._engine.queues.get(record.queue_id or "")
                hint = queue.config.asterisk_name if queue else None
                self._feed(
                    ev.CallArrived(
                        record.id,
                        record.caller_number,
                        record.called_number,
                        hint,
                        arrived_at=arrived,
                        legs_used=record.legs_used,
                    )
                )
                log.info("call_readopted", call_id=record.id, queue=hint)

    async def _cleanup_orphan(self, control: CallControl, call: LiveCall) -> None:
        await _quietly(control.hangup(call.channel_id))
        if call.holding_bridge is not None:
            await _quietly(control.destroy_bridge(call.holding_bridge))

    def _close_lost(self, record: OpenCall, now: datetime) -> None:
        answered = record.status == "answered"
        status = "completed" if answered else "missed"
        talked = now - record.answer_time if answered and record.answer_time else None
        end = CallEnd(
            status,
            "lost",
            round(talked.total_seconds()) if talked else 0,
            reconciled=True,
        )
        self._records.later(record.id, lambda: self._records.ended(record.id, now, end))
        log.warning("call_closed_lost", call_id=record.id, status=status)

    def _note(self, call_id: str, action: str, data: dict[str, Any]) -> None:
        at = self._clock()
        detail = {"action": action, **data}
        self._records.later(call_id, lambda: self._records.reconciled(call_id, at, detail))

    async def _stray(self, control: CallControl, channel_id: str) -> None:
        """A channel in the app that no record explains: a caller who arrived while we were
        away is routed; anything else (an orphaned operator leg) is hung up."""
        try:
            channel = await control.channel(channel_id)
        except AriNotFound:
            return
        if _looks_like_leg(channel_id):
            log.warning("stray_leg_hung_up", channel_id=channel_id)
            await _quietly(control.hangup(channel_id))
            return
        queue = None
        with contextlib.suppress(AriNotFound, AriRequestFailed):
            queue = await control.variable(channel_id, "QUEUE")
        log.info("stray_caller_adopted", channel_id=channel_id, queue=queue)
        self._caller_entered(control.node, CallerEntered(channel, (queue,) if queue else ()))

    async def _probe_endpoint(self, extension: str) -> None:
        control = self._controls(DEFAULT_NODE)
        if control is None:
            return  # on_ari_connected lists every endpoint when the link comes up
        with contextlib.suppress(AriNotFound):
            self._endpoint_changed(await control.endpoint("PJSIP", extension))

    def _endpoint_changed(self, state: EndpointState) -> None:
        operator_id = self._extensions.get(state.resource)
        if operator_id is not None and state.online is not None:
            self._feed(ev.OperatorReachability(operator_id, state.online))

    def _caller_entered(self, node: str, entered: CallerEntered) -> None:
        channel = entered.channel
        if self._live.of_caller(channel.id) is not None:
            return
        call_id = str(uuid.uuid4())
        caller_number = entered.caller_number
        self._live.add(LiveCall(call_id, channel.id, caller_number, node))
        at = self._clock()
        log.info("call_started", call_id=call_id, channel_id=channel.id, args=entered.args)
        self._records.later(
            call_id,
            lambda: self._records.started(
                call_id,
                at,
                channel_id=channel.id,
                caller_number=caller_number,
                called_number=channel.called_number,
                routed_by="ari",
            ),
        )
        hint = entered.args[0] if entered.args and entered.args[0] else None
        self._feed(ev.CallArrived(call_id, caller_number, channel.called_number, hint))

    # --- the engine ---------------------------------------------------------------------------
    def _feed(self, event: ev.Event) -> list[asyncio.Task[None]]:
        at = self._clock()
        if isinstance(event, ev.OperatorUpserted):
            operator = event.operator
            if self._extensions.get(operator.extension) != operator.id:
                self._extensions[operator.extension] = operator.id
                # State changes are pushed, but the phone may have changed state before we
                # knew this extension: ask once.
                self._lanes.run(
                    f"op:{operator.id}", lambda: self._probe_endpoint(operator.extension)
                )
        commands = self._engine.handle(event, at.timestamp())
        tasks = [task for command in commands if (task := self._execute(command, at))]
        self._arm_timer()
        return tasks

    def _arm_timer(self) -> None:
        due = self._engine.next_deadline()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if due is None:
            return
        delay = max(0.0, due - self._clock().timestamp())
        self._timer = asyncio.get_running_loop().call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._feed(ev.Tick())

    # --- commands -----------------------------------------------------------------------------
    def _execute(self, command: Command, at: datetime) -> asyncio.Task[None] | None:
        match command:
            case cmd.RingOperator():
                self._live.add_leg(command.call_id, command.leg_id, command.operator_id)
                # Each leg has its own lane: ringing must not wait for the caller's answer
                # and music on hold, and a cancel must follow its own leg's creation.
                self._telephony(
                    command.leg_id, self._node_of(command.call_id), lambda c: self._ring(c, command)
                )
                return self._fact(command, at)
            case cmd.AnswerCaller(call_id=call_id):
                self._on_caller(call_id, lambda c, live: _quietly(c.answer(live.channel_id)))
                return None
            case cmd.HoldCaller(call_id=call_id, music_class=music):
                self._on_caller(call_id, lambda c, live: self._hold(c, live, music))
                return None
            case cmd.CancelLeg(call_id=call_id, leg_id=leg_id):
                self._telephony(
                    leg_id, self._node_of(call_id), lambda c: _quietly(c.hangup(leg_id))
                )
                return None
            case cmd.ConnectCall():
                self._on_caller(command.call_id, lambda c, live: self._connect(c, live, command))
                return None
            case cmd.HangupCaller(call_id=call_id):
                self._on_caller(call_id, lambda c, live: _quietly(c.hangup(live.channel_id)))
                return None
            case cmd.ContinueInDialplan(call_id=call_id):
                self._on_caller(
                    call_id, lambda c, live: _quietly(c.continue_in_dialplan(live.channel_id))
                )
                return None
            case cmd.CallQueued() | cmd.LegEnded() | cmd.CallAnswered():
                if isinstance(command, cmd.CallQueued):
                    self._queued_at[command.call_id] = time.monotonic()
                return self._fact(command, at)
            case cmd.CallEnded():
                self._queued_at.pop(command.call_id, None)
                self._lanes.run(f"ari:{command.call_id}", lambda: self._forget(command.call_id))
                return self._fact(command, at)
            case cmd.OperatorStatusChanged() | cmd.OperatorLoggedIn():
                fact = command
                return self._lanes.run(
                    f"op:{fact.operator_id}",
                    lambda: retrying(
                        lambda: self._operator_fact(fact, at),
                        RECORD_RETRY_DELAYS,
                        DatabaseUnavailable,
                        f"operator {fact.operator_id}",
                    ),
                )

    def _node_of(self, call_id: str) -> str:
        live = self._live.get(call_id)
        return live.node if live is not None else DEFAULT_NODE

    def _telephony(self, lane: str, node: str, action: Action) -> None:
        """Queue a call-control action on a lane: a call id, or a leg id for that leg's own
        actions. Not awaited by submit(): only facts are."""

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
            self._telephony(call_id, live.node, lambda c: action(c, live))

    # --- telephony actions --------------------------------------------------------------------
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

    def _leg_in_stasis(self, leg_id: str) -> asyncio.Event:
        ready = self._leg_ready.get(leg_id)
        if ready is None:
            ready = self._leg_ready[leg_id] = asyncio.Event()
        return ready

    async def _ring(self, control: CallControl, ring: cmd.RingOperator) -> None:
        live = self._live.get(ring.call_id)
        variables = {"CALLERID(num)": ring.caller_number, "CALLERID(name)": ring.caller_number}
        ready = self._leg_in_stasis(ring.leg_id)
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
            self._feed(ev.LegFailed(ring.leg_id, LegFailure.UNREACHABLE))
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
        await control.create_bridge(bridge, "mixing")
        live.talk_bridge = bridge
        if live.holding_bridge is not None:
            await _quietly(control.remove_from_bridge(live.holding_bridge, live.channel_id))
            await _quietly(control.stop_moh(live.channel_id))
        await _quietly(control.answer(live.channel_id))
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

    async def _forget(self, call_id: str) -> None:
        """After the call's other actions (its lane): forget it, and tear its bridges down."""
        live = self._live.remove(call_id)
        control = self._controls(live.node) if live is not None else None
        if live is None or control is None:
            return
        for bridge in (live.holding_bridge, live.talk_bridge):
            if bridge is not None:
                await _quietly(control.destroy_bridge(bridge))

    # --- facts: store first, then publish -----------------------------------------------------
    def _fact(self, fact: CallFact, at: datetime) -> asyncio.Task[None]:
        records = self._records
        call_id = fact.call_id
        match fact:
            case cmd.RingOperator():
                return records.later(
                    call_id, lambda: records.ringing(call_id, at, fact.leg_id, fact.operator_id)
                )
            case cmd.CallQueued():
                return records.later(
                    call_id,
                    lambda: records.queued(
                        call_id, at, fact.queue_id, fact.position, moved_from=fact.moved_from
                    ),
                )
            case cmd.LegEnded():
                return records.later(
                    call_id,
                    lambda: records.leg_ended(
                        call_id, at, fact.leg_id, fact.operator_id, fact.outcome
                    ),
                )
            case cmd.CallAnswered():
                return records.later(
                    call_id,
                    lambda: records.answered(call_id, at, fact.operator_id, fact.wait_seconds),
                )
            case cmd.CallEnded():
                end = CallEnd(
                    fact.outcome.value,
                    fact.reason.value,
                    round(fact.talk_seconds),
                    operator_id=fact.operator_id,
                    wait_seconds=fact.wait_seconds,
                    queue_id=fact.queue_id,
                )
                return records.later(call_id, lambda: records.ended(call_id, at, end))

    async def _operator_fact(
        self, fact: cmd.OperatorStatusChanged | cmd.OperatorLoggedIn, at: datetime
    ) -> None:
        stamp = to_iso(at)
        if isinstance(fact, cmd.OperatorLoggedIn):
            self._bus.emit(out.OperatorLoggedIn(fact.operator_id, fact.extension, stamp))
            return
        await self._operators.status(fact.operator_id, fact.status.value, fact.reason, at)
        if fact.reason == "no_answer":
            await self._operators.presence(fact.operator_id, "paused", "no_answer", at)
        self._bus.emit(
            out.OperatorStatusChanged(fact.operator_id, fact.status.value, fact.reason, stamp)
        )


def _looks_like_leg(channel_id: str) -> bool:
    """Our legs are named `<call uuid>-<n>`; Asterisk's own ids are `<epoch>.<n>`."""
    head, _, tail = channel_id.rpartition("-")
    return len(head) == 36 and tail.isdigit()


async def _quietly(request: Awaitable[None]) -> None:
    """A channel or bridge already gone is the expected race, not an error."""
    with contextlib.suppress(AriNotFound):
        await request

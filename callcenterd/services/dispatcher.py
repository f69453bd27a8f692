"""The dispatcher: Asterisk's events in, the engine decides, its commands carried out.

translate (telephony/translate.py) -> engine (routing/) -> execute: telephony commands go
to `CallActions` (services/call_actions.py, through the call-control port), facts to the
`CallRecorder` (services/call_records.py: store, then publish). The engine is synchronous
and fast, so every event is handled inline on the event loop (asyncio already serialises
them); what follows is I/O on ordered lanes, so ringing an operator never waits for the
disk, and a call's record is always written before its event is published.

After a restart or a lost event stream the dispatcher carries out what reconciliation
(services/reconciliation.py) decides from one snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import structlog

from callcenterd.contract.schemas import SystemSettings
from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.clock import to_iso
from callcenterd.domain.commands import Command
from callcenterd.domain.pauses import AUTOPAUSE_REASON
from callcenterd.domain.queues import OperatorProfile, QueueConfig
from callcenterd.domain.supervision import is_supervision_channel
from callcenterd.errors import CallcenterError, DatabaseUnavailable
from callcenterd.events import payloads as out
from callcenterd.events.bus import EventBus
from callcenterd.routing import RoutingEngine
from callcenterd.routing.state import CallPhase
from callcenterd.services import reconciliation as plan
from callcenterd.services.call_actions import CallActions, Controls
from callcenterd.services.call_records import RECORD_RETRY_DELAYS, CallRecorder
from callcenterd.services.callback_calls import CallbackDial
from callcenterd.services.last_operators import LastOperators
from callcenterd.services.live_calls import LiveCall, LiveCalls, hold_bridge_of, talk_bridge_of
from callcenterd.store.calls import CallEnd, OpenCall, OperatorStatusWriter
from callcenterd.tasks import SerialLanes, retrying
from callcenterd.telephony.call_control import Bridge, CallControl, EndpointState
from callcenterd.telephony.errors import AriNotFound, AriRequestFailed, TelephonyError
from callcenterd.telephony.translate import (
    HANDLED,
    CallerEntered,
    CallerLeft,
    DigitReceived,
    LegInStasis,
    LegReplacing,
    PlaybackFinished,
    SupervisionSignal,
    translate,
)

log = structlog.get_logger(__name__)

# A callback's steps (services/callbacks.py): stored, then published, in the call's order.
CallbackFacts = Callable[[cmd.CallbackChanged, datetime], "asyncio.Task[None] | None"]

# Operator phones' reachability comes from their PJSIP endpoints' state.
ENDPOINT_SOURCE = "endpoint:PJSIP"


@dataclass(frozen=True, slots=True)
class TalkingCall:
    """A call whose caller talks to an operator now: what supervision joins."""

    call_id: str
    node: str
    caller_channel_id: str
    operator_channel_id: str  # the operator's leg
    operator_id: str
    queue_id: str


class SupervisionHooks(Protocol):
    """What supervision (services/supervision.py) is told: its channels' events, calls
    ending, and each reconciliation; and what it owns, which reconciliation leaves alone."""

    def signal(self, signal: SupervisionSignal) -> None: ...

    def call_ended(self, call_id: str) -> None: ...

    def owns(self, channel_id: str) -> bool: ...

    async def reconciled(
        self, control: CallControl, in_app: set[str], bridges: list[Bridge]
    ) -> None: ...


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
        priority_of_caller: Callable[[str], int] = lambda _: 0,
        callback_facts: CallbackFacts | None = None,
        callback_dial: CallbackDial | None = None,
    ) -> None:
        self._engine = engine
        self._priority_of_caller = priority_of_caller  # the VIP list
        self.last_operators = LastOperators()  # loaded at start by the app
        self._callback_facts = callback_facts
        self._records = records
        self._operators = operators
        self._bus = bus
        self._clock = clock
        self._live = LiveCalls()
        self._actions = CallActions(
            self._live,
            controls,
            records,
            clock,
            lambda leg_id, why: self._feed(ev.LegFailed(leg_id, why)),
            observe_routing=observe_routing,
            callback_dial=callback_dial,
        )
        # Operators' status facts, in order per operator (store, then publish).
        self._operator_lanes = SerialLanes(expected=(CallcenterError,))
        self._extensions: dict[str, str] = {}  # extension -> operator id
        self._timer: asyncio.TimerHandle | None = None
        self._supervision: SupervisionHooks | None = None

    def watch_supervision(self, hooks: SupervisionHooks) -> None:
        self._supervision = hooks

    def talking(self, call_id: str) -> TalkingCall | None:
        """The call, if its caller is connected to an operator now."""
        call = self._engine.calls.get(call_id)
        live = self._live.get(call_id)
        if (
            call is None
            or live is None
            or call.phase is not CallPhase.CONNECTED
            or call.connected_leg is None
            or call.operator_id is None
        ):
            return None
        return TalkingCall(
            call_id, live.node, live.channel_id, call.connected_leg, call.operator_id, call.queue_id
        )

    @property
    def engine(self) -> RoutingEngine:
        """Read-only use: live figures and tests. Changes go through submit()."""
        return self._engine

    @property
    def record_calls(self) -> bool:
        """Whether talking calls are recorded (the saved `call_recording` setting)."""
        return self._actions.record_calls

    def operator_of_extension(self, extension: str) -> str | None:
        return self._extensions.get(extension)

    def operators_on(self, channel_id: str) -> set[str]:
        """Operators taking part in the call a channel belongs to (caller or leg)."""
        live = self._live.of_channel(channel_id)
        if live is None:
            return set()
        involved = {operator for operator in live.legs.values() if operator}
        call = self._engine.calls.get(live.call_id)
        if call is not None and call.operator_id is not None:
            involved.add(call.operator_id)
        return involved

    def operator_talking_on(self, call_id: str) -> str | None:
        """The operator who has the call now (None: nobody is talking with its caller)."""
        call = self._engine.calls.get(call_id)
        return call.operator_id if call is not None else None

    # --- inputs -------------------------------------------------------------------------------
    async def submit(self, event: ev.Event) -> None:
        """From services: returns once the resulting facts are stored."""
        await asyncio.gather(*self._feed(event))

    async def request(self, event: ev.Event) -> cmd.Refused | None:
        """A request about a live call (hold, transfer): the engine's refusal, or None once
        what it decided is stored (its telephony actions are under way)."""
        commands, tasks = self._decide(event)
        await asyncio.gather(*tasks)
        return next((c for c in commands if isinstance(c, cmd.Refused)), None)

    async def apply_settings(self, settings: SystemSettings) -> None:
        self._actions.record_calls = settings.call_recording
        await self.submit(
            ev.SettingsChanged(
                settings.auto_answer_delay,
                settings.max_call_duration,
                settings.queue_timeout,
                settings.callback_enabled,
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
                    self._actions.leg_in_stasis(leg_id).set()
                case LegReplacing():
                    self._phone_transfer(item)
                case SupervisionSignal():
                    if self._supervision is not None:
                        self._supervision.signal(item)
                case DigitReceived(channel_id=channel_id, digit=digit):
                    self._digit(channel_id, digit)
                case PlaybackFinished(playback_id=playback_id):
                    self._actions.playback_finished(playback_id)
                case _:
                    self._feed(item)

    def _phone_transfer(self, swap: LegReplacing) -> None:
        """A transfer made on the operator's phone: the new channel is the call's leg now."""
        live = self._live.of_channel(swap.leg_id)
        if live is None:
            return
        operator_id = self._extensions.get(swap.number)
        self._live.add_leg(live.call_id, swap.channel_id, operator_id or "")
        log.info(
            "phone_transfer",
            call_id=live.call_id,
            leg_id=swap.leg_id,
            to=swap.number,
            attended=swap.attended,
        )
        self._feed(
            ev.LegReplaced(swap.leg_id, swap.channel_id, swap.number, operator_id, swap.attended)
        )

    def _digit(self, channel_id: str, digit: str) -> None:
        call_id = self._live.of_caller(channel_id)
        if call_id is not None:  # with the ids a callback it books would take
            self._feed(ev.CallerDigit(call_id, digit, str(uuid.uuid4()), str(uuid.uuid4())))

    async def on_ari_connected(self, control: CallControl) -> None:
        with contextlib.suppress(TelephonyError):
            await control.allow_event_types(sorted(HANDLED))
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
        while self._pending():
            await self._actions.drain()
            await self._operator_lanes.drain()
            await self._records.drain()

    def _pending(self) -> int:
        return self._actions.pending() + self._operator_lanes.pending() + self._records.pending()

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
            log.error("stop_timed_out", pending_lanes=self._pending())

    # --- recovery: after a restart or a lost event stream -------------------------------------
    async def _reconcile(self, control: CallControl) -> None:
        """Make the store, the engine and Asterisk agree again (services/reconciliation.py)."""
        in_app = await control.app_channel_ids()
        all_bridges = await control.bridges()
        bridges = {bridge.id: bridge.channel_ids for bridge in all_bridges}
        records = await self._records.open_calls()
        live = {call.call_id: call for call in self._live if call.node == control.node}
        # Supervision's channels are never callers: it looks after them itself, below.
        calls_in_app = {c for c in in_app if not is_supervision_channel(c)}
        snapshot = plan.AsteriskSnapshot(frozenset(calls_in_app), bridges)
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
        if self._supervision is not None:
            await self._supervision.reconciled(control, in_app, all_bridges)
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
        self._live.add(call)
        if isinstance(action, plan.ResumeTalk) and action.finish_hold and action.holding:
            # A holding bridge the caller never reached: made again by the finished hold.
            self._actions.destroy_bridge(call, hold_bridge_of(record.id))
        elif action.holding:
            call.holding_bridge = hold_bridge_of(record.id)
        self._note(record.id, "adopted", {"status": record.status})
        arrived = record.start_time.timestamp()
        match action:
            case plan.ResumeTalk(leg_id=leg_id):
                assert record.operator_id is not None and record.queue_id is not None
                call.talk_bridge = talk_bridge_of(record.id)
                self._live.add_leg(record.id, leg_id, record.operator_id)
                answered = record.answer_time or record.start_time
                # On hold (or consulting: that leg is hung up as a stray) since then.
                held_at = (record.held_at or self._clock()).timestamp()
                self._feed(
                    ev.CallResumed(
                        record.id,
                        record.caller_number,
                        record.queue_id,
                        arrived,
                        record.operator_id,
                        leg_id,
                        answered.timestamp(),
                        held_at=held_at if action.held else None,
                        finish_hold=action.finish_hold,
                    )
                )
                log.info("call_resumed", call_id=record.id, operator_id=record.operator_id)
            case plan.EndOrphaned():
                self._live.remove(record.id)
                self._actions.end_orphan(call)
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
                        priority=record.priority,
                        talked=_talk_so_far(record),
                    )
                )
                log.info("call_readopted", call_id=record.id, queue=hint)

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
            with contextlib.suppress(AriNotFound):
                await control.hangup(channel_id)
            call_id = channel_id.rpartition("-")[0]
            if self._live.get(call_id) is not None:  # e.g. a consultation cut by the restart
                at = self._clock()
                self._records.later(
                    call_id, lambda: self._records.leg_ended(call_id, at, channel_id, None, "lost")
                )
            return
        queue = None
        with contextlib.suppress(AriNotFound, AriRequestFailed):
            queue = await control.variable(channel_id, "QUEUE")
        log.info("stray_caller_adopted", channel_id=channel_id, queue=queue)
        self._caller_entered(control.node, CallerEntered(channel, (queue,) if queue else ()))

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
        priority = max(entered.priority, self._priority_of_caller(caller_number))
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
                priority=priority,
            ),
        )
        hint = entered.args[0] if entered.args and entered.args[0] else None
        self._feed(
            ev.CallArrived(
                call_id,
                caller_number,
                channel.called_number,
                hint,
                priority=priority,
                last_operator=self.last_operators.of(caller_number),
            )
        )

    # --- the engine ---------------------------------------------------------------------------
    def _feed(self, event: ev.Event) -> list[asyncio.Task[None]]:
        return self._decide(event)[1]

    def _decide(self, event: ev.Event) -> tuple[list[Command], list[asyncio.Task[None]]]:
        at = self._clock()
        if isinstance(event, ev.OperatorUpserted):
            operator = event.operator
            if self._extensions.get(operator.extension) != operator.id:
                self._extensions[operator.extension] = operator.id
                # State changes are pushed, but the phone may have changed state before we
                # knew this extension: ask once.
                self._actions.probe_endpoint(
                    f"op:{operator.id}", operator.extension, self._endpoint_changed
                )
        commands = self._engine.handle(event, at.timestamp())
        tasks = [task for command in commands if (task := self._execute(command, at))]
        self._arm_timer()
        return commands, tasks

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
                self._actions.carry_out(command)
                live = self._live.get(command.call_id)
                return self._records.record(command, at, live.node if live else None)
            case (
                cmd.AnswerCaller()
                | cmd.HoldCaller()
                | cmd.GreetCaller()
                | cmd.AnnounceWait()
                | cmd.CancelLeg()
                | cmd.ConnectCall()
                | cmd.HangupCaller()
                | cmd.ContinueInDialplan()
                | cmd.ParkCaller()
                | cmd.ResumeCaller()
                | cmd.JoinLeg()
                | cmd.SendToDialplan()
                | cmd.OfferCallback()
                | cmd.ConfirmCallback()
                | cmd.DialCallback()
            ):
                self._actions.carry_out(command)
                return None
            case cmd.Refused():
                return None  # the requester reads it (request())
            case (
                cmd.CallHeld()
                | cmd.CallUnheld()
                | cmd.TransferStarted()
                | cmd.ConsultAnswered()
                | cmd.CallTransferred()
                | cmd.TransferFailed()
            ):
                return self._records.record(command, at)
            case cmd.TransferRinging():
                live = self._live.get(command.call_id)
                return self._records.record(command, at, live.node if live else None)
            case cmd.CallbackChanged():
                facts = self._callback_facts
                return facts(command, at) if facts is not None else None
            case cmd.CallQueued():
                self._actions.queued(command.call_id)
                return self._records.record(command, at)
            case cmd.CallAnswered():
                live = self._live.get(command.call_id)
                if live is not None:
                    self.last_operators.served(live.caller_number, command.operator_id)
                return self._records.record(command, at)
            case cmd.LegEnded():
                return self._records.record(command, at)
            case cmd.CallEnded():
                self._actions.ended(command.call_id)
                if self._supervision is not None:
                    self._supervision.call_ended(command.call_id)
                return self._records.record(command, at)
            case cmd.OperatorStatusChanged() | cmd.OperatorLoggedIn():
                fact = command
                return self._operator_lanes.run(
                    fact.operator_id,
                    lambda: retrying(
                        lambda: self._operator_fact(fact, at),
                        RECORD_RETRY_DELAYS,
                        DatabaseUnavailable,
                        f"operator {fact.operator_id}",
                    ),
                )

    # --- operators: store first, then publish -------------------------------------------------
    async def _operator_fact(
        self, fact: cmd.OperatorStatusChanged | cmd.OperatorLoggedIn, at: datetime
    ) -> None:
        stamp = to_iso(at)
        if isinstance(fact, cmd.OperatorLoggedIn):
            self._bus.emit(out.OperatorLoggedIn(fact.operator_id, fact.extension, stamp))
            return
        await self._operators.status(fact.operator_id, fact.status.value, fact.reason, at)
        if fact.reason == AUTOPAUSE_REASON:
            await self._operators.presence(fact.operator_id, "paused", AUTOPAUSE_REASON, at)
        self._bus.emit(
            out.OperatorStatusChanged(
                fact.operator_id, fact.status.value, fact.pause_reason, fact.reason, stamp
            )
        )


def _looks_like_leg(channel_id: str) -> bool:
    """Our legs are named `<call uuid>-<n>`; Asterisk's own ids are `<epoch>.<n>`."""
    head, _, tail = channel_id.rpartition("-")
    return len(head) == 36 and tail.isdigit()


def _talk_so_far(record: OpenCall) -> ev.TalkSoFar | None:
    """An answered record being re-adopted as a waiting caller (a transfer under way)."""
    if record.status != "answered" or record.operator_id is None:
        return None
    answered = record.answer_time or record.start_time
    return ev.TalkSoFar(record.operator_id, answered.timestamp(), record.talked_seconds)

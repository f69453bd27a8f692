"""The dispatcher: events in, the engine decides, commands out to Asterisk, the store and the bus.

The engine is synchronous and fast, so every event is handled inline on the event loop
(asyncio already serialises them). What follows is I/O, queued on two ordered lanes per
call: a telephony lane (ARI requests, in order) and a records lane (store, then bus, in
order). Ringing an operator therefore never waits for the disk, and a call's record is
always written before its event is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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
from callcenterd.events.bus import EventBus
from callcenterd.routing import RoutingEngine
from callcenterd.store.calls import CallWriter, OpenCall, OperatorStatusWriter
from callcenterd.telephony.ari_client import AriClient, AriNotFound, AriRequestFailed
from callcenterd.telephony.translate import (
    LEG_MARK,
    NOISE,
    CallerEntered,
    CallerLeft,
    EndpointState,
    LegInStasis,
    endpoint_state,
    translate,
)

log = structlog.get_logger(__name__)

Job = Callable[[], Awaitable[None]]
# Operator phones' reachability comes from their PJSIP endpoints' state.
ENDPOINT_SOURCE = "endpoint:PJSIP"


class SerialLanes:
    """Runs jobs one after another per key, keys independently; failures are logged."""

    def __init__(self) -> None:
        self._tails: dict[str, asyncio.Task[None]] = {}

    def run(self, key: str, job: Job) -> asyncio.Task[None]:
        previous = self._tails.get(key)

        async def chained() -> None:
            if previous is not None:
                with contextlib.suppress(BaseException):
                    await previous
            try:
                await job()
            except (CallcenterError, AriNotFound, AriRequestFailed) as err:
                log.warning("job_failed", lane=key, error=str(err))
            except Exception:
                log.exception("job_crashed", lane=key)

        task = asyncio.create_task(chained())
        self._tails[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))
        return task

    def _forget(self, key: str, done: asyncio.Task[None]) -> None:
        if self._tails.get(key) is done:
            del self._tails[key]

    def pending(self) -> int:
        return len(self._tails)

    async def drain(self) -> None:
        while self._tails:
            await asyncio.gather(*self._tails.values(), return_exceptions=True)


@dataclass(slots=True)
class LiveCall:
    call_id: str
    channel_id: str
    caller_number: str
    legs: dict[str, str] = field(default_factory=dict)  # leg id -> operator id
    holding_bridge: str | None = None
    talk_bridge: str | None = None


class Dispatcher:
    def __init__(
        self,
        engine: RoutingEngine,
        calls: CallWriter,
        operators: OperatorStatusWriter,
        bus: EventBus,
        clock: Callable[[], datetime],
        ari: Callable[[], AriClient | None],
        *,
        observe_routing: Callable[[float], None] | None = None,
    ) -> None:
        self._engine = engine
        self._calls = calls
        self._operators = operators
        self._bus = bus
        self._clock = clock
        self._ari = ari
        self._lanes = SerialLanes()
        self._live: dict[str, LiveCall] = {}
        self._by_channel: dict[str, str] = {}  # caller channel id -> call id
        self._legs: dict[str, str] = {}  # leg (channel) id -> call id
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
        call_id = self._by_channel.get(channel_id) or self._legs.get(channel_id)
        live = self._live.get(call_id) if call_id else None
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

    def on_ari_event(self, frame: dict[str, Any]) -> None:
        for item in translate(frame, self._legs.__contains__):
            match item:
                case CallerEntered():
                    self._caller_entered(item)
                case CallerLeft(channel_id=channel_id):
                    call_id = self._by_channel.get(channel_id)
                    if call_id is not None:
                        self._feed(ev.CallerHungUp(call_id))
                case EndpointState():
                    self._endpoint_changed(item)
                case LegInStasis(leg_id=leg_id):
                    self._leg_in_stasis(leg_id).set()
                case _:
                    self._feed(item)

    async def on_ari_connected(self, client: AriClient) -> None:
        with contextlib.suppress(CallcenterError, AriRequestFailed, AriNotFound):
            await client.drop_event_types(sorted(NOISE))
        try:
            await client.subscribe(ENDPOINT_SOURCE)
            for endpoint in await client.endpoints("PJSIP"):
                self._endpoint_changed(endpoint_state(endpoint))
        except (CallcenterError, AriRequestFailed, AriNotFound) as err:
            log.warning("endpoint_states_unavailable", error=str(err))
        try:
            await self._reconcile(client)
        except (CallcenterError, AriRequestFailed, AriNotFound) as err:
            log.error("reconcile_failed", error=str(err))

    # --- recovery: after a restart or a lost event stream ---------------------------------------
    async def _reconcile(self, client: AriClient) -> None:
        """Make the store, the engine and Asterisk agree again.

        Calls still in the app are re-adopted (waiting callers keep their place and wait,
        talking calls their operator); channels nobody can account for are hung up; every
        open record whose channel is gone is closed (`completed` if answered, else `missed`
        with reason `lost`).
        """
        application = await client.application()
        in_app = {str(c) for c in application.get("channel_ids", [])}
        bridges: list[dict[str, Any]] = await client.request("GET", "/bridges")
        members = {str(b["id"]): {str(c) for c in b.get("channels", [])} for b in bridges}
        records = await self._calls.open_calls()
        now = self._clock()
        accounted: set[str] = set()
        # Decide from the snapshot first, then act: acting frees operators and rings new
        # legs, which the snapshot cannot know and must not judge.
        replays: list[ev.Event] = []
        for record in records:
            live = self._live.get(record.id)
            if live is not None:
                kept, events = self._resync_known(live, in_app)
                accounted |= kept
                replays += events
            elif record.channel_id in in_app:
                accounted |= self._adopt(record, members)
            else:
                self._close_lost(record, now)
        for event in replays:
            self._feed(event)
        for channel_id in sorted(in_app - accounted - set(self._by_channel) - set(self._legs)):
            await self._stray(client, channel_id)
        # Adoption used a snapshot: a channel that hung up since then is ended now.
        for channel_id, call_id in list(self._by_channel.items()):
            with contextlib.suppress(AriNotFound):
                await client.request("GET", f"/channels/{channel_id}")
                continue
            self._feed(ev.CallerHungUp(call_id))
        log.info("reconciled", open_records=len(records), in_app=len(in_app))

    def _resync_known(self, live: LiveCall, in_app: set[str]) -> tuple[set[str], list[ev.Event]]:
        """A call we never forgot: what it kept in Asterisk, and the ends we missed."""
        if live.channel_id not in in_app:
            self._record_reconciled(live.call_id, "lost", {"channel_id": live.channel_id})
            return set(), [ev.CallLost(live.call_id)]
        kept = {live.channel_id}
        missed: list[ev.Event] = []
        for leg_id in list(live.legs):
            if leg_id in in_app:
                kept.add(leg_id)
            else:
                missed.append(ev.LegHungUp(leg_id))
        return kept, missed

    def _adopt(self, record: OpenCall, members: dict[str, set[str]]) -> set[str]:
        call = LiveCall(record.id, record.channel_id, record.caller_number)
        arrived = record.start_time.timestamp()
        talk = members.get(f"talk-{record.id}", set())
        leg = next((c for c in talk if c != record.channel_id), None)
        if f"hold-{record.id}" in members:
            call.holding_bridge = f"hold-{record.id}"
        self._live[record.id] = call
        self._by_channel[record.channel_id] = record.id
        self._record_reconciled(record.id, "adopted", {"status": record.status})
        if record.status == "answered" and leg and record.operator_id and record.queue_id:
            call.talk_bridge = f"talk-{record.id}"
            call.legs[leg] = record.operator_id
            self._legs[leg] = record.id
            answered = record.answer_time or record.start_time
            self._feed(
                ev.CallResumed(
                    record.id,
                    record.caller_number,
                    record.queue_id,
                    arrived,
                    record.operator_id,
                    leg,
                    answered.timestamp(),
                )
            )
            log.info("call_resumed", call_id=record.id, operator_id=record.operator_id)
            return {record.channel_id, leg}
        if record.status == "answered":
            # Its operator is gone: the conversation cannot go on.
            self._feed_hangup_and_close(record)
            return {record.channel_id}
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
        return {record.channel_id}

    def _feed_hangup_and_close(self, record: OpenCall) -> None:
        channel = record.channel_id
        self._telephony(record.id, lambda c: _quietly(c.hangup(channel)))
        self._live.pop(record.id, None)
        self._by_channel.pop(channel, None)
        self._close_lost(record, self._clock())

    def _close_lost(self, record: OpenCall, now: datetime) -> None:
        answered = record.status == "answered"
        status = "completed" if answered else "missed"
        changes: dict[str, Any] = {
            "status": status,
            "reason": "lost",
            "end_time": to_iso(now),
            "duration": round((now - record.answer_time).total_seconds())
            if answered and record.answer_time
            else 0,
        }

        async def job() -> None:
            await self._calls.update(
                record.id, now, "reconciled", changes, data={"outcome": status, "reason": "lost"}
            )
            self._bus.publish(
                "call_ended",
                {
                    "call_id": record.id,
                    "end_time": to_iso(now),
                    "duration": changes["duration"],
                    "status": status,
                    "reason": "lost",
                },
            )

        self._record(record.id, job)
        log.warning("call_closed_lost", call_id=record.id, status=status)

    def _record_reconciled(self, call_id: str, what: str, data: dict[str, Any]) -> None:
        at = self._clock()
        self._record(
            call_id,
            lambda: self._calls.update(
                call_id, at, "reconciled", {}, data={"action": what, **data}
            ),
        )

    async def _stray(self, client: AriClient, channel_id: str) -> None:
        """A channel in the app that no record explains: a caller who arrived while we were
        away is routed; anything else (an orphaned operator leg) is hung up."""
        try:
            channel: dict[str, Any] = await client.request("GET", f"/channels/{channel_id}")
        except AriNotFound:
            return
        if _looks_like_leg(channel_id):
            log.warning("stray_leg_hung_up", channel_id=channel_id)
            await _quietly(client.hangup(channel_id))
            return
        queue = None
        with contextlib.suppress(AriNotFound, AriRequestFailed):
            found = await client.request(
                "GET", f"/channels/{channel_id}/variable", params={"variable": "QUEUE"}
            )
            queue = str(found.get("value") or "") or None
        caller = channel.get("caller") or {}
        dialplan = channel.get("dialplan") or {}
        log.info("stray_caller_adopted", channel_id=channel_id, queue=queue)
        self._caller_entered(
            CallerEntered(
                channel_id=channel_id,
                channel_name=str(channel.get("name", "")),
                caller_number=str(caller.get("number") or "unknown"),
                caller_name=str(caller.get("name") or ""),
                called_number=str(dialplan.get("exten")) if dialplan.get("exten") else None,
                args=(queue,) if queue else (),
                state=str(channel.get("state", "")),
            )
        )

    async def release_ari(self) -> None:
        """Before disconnecting: drop our endpoint subscription, which would otherwise keep
        the (inactive) application registered in Asterisk after we are gone."""
        client = self._ari()
        if client is not None:
            with contextlib.suppress(CallcenterError, AriRequestFailed, AriNotFound):
                await client.unsubscribe(ENDPOINT_SOURCE)

    async def _probe_endpoint(self, extension: str) -> None:
        client = self._ari()
        if client is None:
            return  # on_ari_connected lists every endpoint when the link comes up
        with contextlib.suppress(AriNotFound):
            found = await client.request("GET", f"/endpoints/PJSIP/{extension}")
            self._endpoint_changed(endpoint_state(found))

    def _endpoint_changed(self, state: EndpointState) -> None:
        operator_id = self._extensions.get(state.resource)
        if operator_id is not None and state.online is not None:
            self._feed(ev.OperatorReachability(operator_id, state.online))

    def _caller_entered(self, entered: CallerEntered) -> None:
        if entered.channel_id in self._by_channel:
            return
        call_id = str(uuid.uuid4())
        self._by_channel[entered.channel_id] = call_id
        self._live[call_id] = LiveCall(call_id, entered.channel_id, entered.caller_number)
        at = self._clock()
        log.info("call_started", call_id=call_id, channel_id=entered.channel_id, args=entered.args)

        async def record() -> None:
            await self._calls.started(
                call_id=call_id,
                channel_id=entered.channel_id,
                caller_number=entered.caller_number,
                called_number=entered.called_number,
                at=at,
            )
            self._bus.publish(
                "call_started",
                {
                    "call_id": call_id,
                    "channel_id": entered.channel_id,
                    "caller_number": entered.caller_number,
                    "called_number": entered.called_number,
                    "timestamp": to_iso(at),
                },
            )

        self._record(call_id, record)
        hint = entered.args[0] if entered.args and entered.args[0] else None
        self._feed(ev.CallArrived(call_id, entered.caller_number, entered.called_number, hint))

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

    async def stop(self, within: float = 10.0) -> None:
        """Finish writing what is queued, for at most `within` seconds.

        Calls stay in Asterisk: talking ones go on, waiting ones keep their music, and the
        next start re-adopts them. New calls meanwhile fail Stasis() at once (the app is not
        active) and the dialplan's fallback takes them.
        """
        if self._timer is not None:
            self._timer.cancel()
        try:
            await asyncio.wait_for(self._lanes.drain(), within)
        except TimeoutError:
            log.error("stop_timed_out", pending_lanes=self._lanes.pending())

    # --- commands -----------------------------------------------------------------------------
    def _execute(self, command: Command, at: datetime) -> asyncio.Task[None] | None:
        match command:
            case cmd.RingOperator():
                self._legs[command.leg_id] = command.call_id
                live = self._live.get(command.call_id)
                if live is not None:
                    live.legs[command.leg_id] = command.operator_id
                # Each leg has its own lane: ringing must not wait for the caller's answer
                # and music on hold, and a cancel must follow its own leg's creation.
                self._telephony(command.leg_id, lambda c: self._ring(c, command))
                return self._record(command.call_id, self._rung(command, at))
            case cmd.AnswerCaller(call_id=call_id):
                self._telephony(call_id, lambda c: self._answer(c, call_id))
                return None
            case cmd.HoldCaller(call_id=call_id, music_class=music):
                self._telephony(call_id, lambda c: self._hold(c, call_id, music))
                return None
            case cmd.CancelLeg(call_id=call_id, leg_id=leg_id):
                self._telephony(leg_id, lambda c: _quietly(c.hangup(leg_id)))
                return None
            case cmd.ConnectCall():
                self._telephony(command.call_id, lambda c: self._connect(c, command))
                return None
            case cmd.HangupCaller(call_id=call_id):
                live = self._live.get(call_id)
                if live is None:
                    return None
                channel = live.channel_id
                self._telephony(call_id, lambda c: _quietly(c.hangup(channel)))
                return None
            case cmd.ContinueInDialplan(call_id=call_id):
                live = self._live.get(call_id)
                if live is None:
                    return None
                channel = live.channel_id
                self._telephony(call_id, lambda c: _quietly(c.continue_in_dialplan(channel)))
                return None
            case cmd.CallQueued() | cmd.LegEnded() | cmd.CallAnswered() | cmd.CallEnded():
                if isinstance(command, cmd.CallQueued):
                    self._queued_at[command.call_id] = time.monotonic()
                if isinstance(command, cmd.CallEnded):
                    self._queued_at.pop(command.call_id, None)
                    self._telephony(command.call_id, lambda c: self._cleanup(c, command.call_id))
                return self._record(command.call_id, self._call_fact(command, at))
            case cmd.OperatorStatusChanged() | cmd.OperatorLoggedIn():
                return self._lanes.run(
                    f"op:{command.operator_id}",
                    _retrying(self._operator_fact(command, at), command.operator_id),
                )

    def _telephony(self, lane: str, action: Callable[[AriClient], Awaitable[None]]) -> None:
        """Queue an ARI action on a lane: a call id, or a leg id for that leg's own actions."""

        async def job() -> None:
            client = self._ari()
            if client is None:
                log.warning("ari_unavailable_for_action", lane=lane)
                return
            await action(client)

        # Telephony is not awaited by submit(): only facts are.
        self._lanes.run(f"ari:{lane}", job)

    def _record(self, call_id: str, job: Job) -> asyncio.Task[None]:
        return self._lanes.run(f"rec:{call_id}", _retrying(job, call_id))

    # --- telephony actions --------------------------------------------------------------------
    async def _answer(self, client: AriClient, call_id: str) -> None:
        live = self._live.get(call_id)
        if live is not None:
            await _quietly(client.answer(live.channel_id))

    async def _hold(self, client: AriClient, call_id: str, music_class: str) -> None:
        live = self._live.get(call_id)
        if live is None or live.talk_bridge is not None:
            return
        bridge = f"hold-{call_id}"
        await client.create_bridge(bridge, "holding")
        live.holding_bridge = bridge
        await _quietly(client.add_to_bridge(bridge, live.channel_id))
        # Music on the channel itself: a bridge's MOH needs an announcer channel, which adds
        # a Local channel per call for no benefit.
        await _quietly(client.start_moh(live.channel_id, music_class))

    def _leg_in_stasis(self, leg_id: str) -> asyncio.Event:
        ready = self._leg_ready.get(leg_id)
        if ready is None:
            ready = self._leg_ready[leg_id] = asyncio.Event()
        return ready

    async def _ring(self, client: AriClient, ring: cmd.RingOperator) -> None:
        live = self._live.get(ring.call_id)
        variables = {"CALLERID(num)": ring.caller_number, "CALLERID(name)": ring.caller_number}
        ready = self._leg_in_stasis(ring.leg_id)
        try:
            await client.create_channel(
                ring.leg_id, f"PJSIP/{ring.extension}", f"{LEG_MARK},{ring.call_id}", variables
            )
            # A created channel enters the app a moment later; dialing it before is a 409.
            await asyncio.wait_for(ready.wait(), client.endpoint.timeout)
            # Asterisk's own dial timeout is a safety net; the engine times the ring.
            await client.dial(
                ring.leg_id, math.ceil(ring.timeout) + 5, live.channel_id if live else None
            )
            self._routed(ring.call_id)
        except (CallcenterError, AriRequestFailed, AriNotFound, TimeoutError) as err:
            log.warning("ring_failed", call_id=ring.call_id, leg_id=ring.leg_id, error=str(err))
            with contextlib.suppress(CallcenterError, AriRequestFailed, AriNotFound):
                await client.hangup(ring.leg_id)
            self._feed(ev.LegFailed(ring.leg_id, LegFailure.UNREACHABLE))
        finally:
            self._leg_ready.pop(ring.leg_id, None)

    def _routed(self, call_id: str) -> None:
        """An operator's phone rings for the call: the first time since it was queued, that
        is its routing latency."""
        queued_at = self._queued_at.pop(call_id, None)
        if queued_at is not None and self._observe_routing is not None:
            self._observe_routing(time.monotonic() - queued_at)

    async def _connect(self, client: AriClient, connect: cmd.ConnectCall) -> None:
        live = self._live.get(connect.call_id)
        if live is None:
            return
        bridge = f"talk-{connect.call_id}"
        await client.create_bridge(bridge, "mixing")
        live.talk_bridge = bridge
        if live.holding_bridge is not None:
            await _quietly(client.remove_from_bridge(live.holding_bridge, live.channel_id))
            await _quietly(client.stop_moh(live.channel_id))
        await _quietly(client.answer(live.channel_id))
        await _quietly(client.add_to_bridge(bridge, live.channel_id))
        await _quietly(client.add_to_bridge(bridge, connect.leg_id))
        if live.holding_bridge is not None:
            await _quietly(client.destroy_bridge(live.holding_bridge))
            live.holding_bridge = None
        if self.record_calls:
            await _quietly(client.record_bridge(bridge, connect.call_id))
            at = self._clock()
            self._record(
                connect.call_id,
                lambda: self._calls.update(
                    connect.call_id, at, "recording_started", {"recording": connect.call_id}
                ),
            )

    async def _cleanup(self, client: AriClient, call_id: str) -> None:
        live = self._live.pop(call_id, None)
        if live is None:
            return
        self._by_channel.pop(live.channel_id, None)
        for leg_id in live.legs:
            self._legs.pop(leg_id, None)
        for bridge in (live.holding_bridge, live.talk_bridge):
            if bridge is not None:
                await _quietly(client.destroy_bridge(bridge))

    # --- facts: store first, then publish -----------------------------------------------------
    def _rung(self, ring: cmd.RingOperator, at: datetime) -> Job:
        async def job() -> None:
            await self._calls.operator_tried(ring.call_id, ring.operator_id, at, ring.leg_id)
            self._bus.publish(
                "call_ringing",
                {"call_id": ring.call_id, "operator_id": ring.operator_id, "timestamp": to_iso(at)},
            )

        return job

    def _call_fact(self, fact: cmd.Fact, at: datetime) -> Job:
        async def job() -> None:
            stamp = to_iso(at)
            match fact:
                case cmd.CallQueued():
                    await self._calls.update(
                        fact.call_id,
                        at,
                        "queued",
                        {"queue_id": fact.queue_id},
                        data={"position": fact.position, "moved_from": fact.moved_from},
                    )
                    self._bus.publish(
                        "call_queued",
                        {
                            "call_id": fact.call_id,
                            "queue_id": fact.queue_id,
                            "position": fact.position,
                            "timestamp": stamp,
                        },
                    )
                case cmd.LegEnded():
                    await self._calls.update(
                        fact.call_id,
                        at,
                        "leg_ended",
                        {},
                        operator_id=fact.operator_id,
                        data={"leg_id": fact.leg_id, "outcome": fact.outcome},
                    )
                case cmd.CallAnswered():
                    await self._calls.update(
                        fact.call_id,
                        at,
                        "answered",
                        {
                            "status": "answered",
                            "answer_time": stamp,
                            "operator_id": fact.operator_id,
                            "wait_seconds": round(fact.wait_seconds, 3),
                        },
                        operator_id=fact.operator_id,
                    )
                    self._bus.publish(
                        "call_answered",
                        {
                            "call_id": fact.call_id,
                            "operator_id": fact.operator_id,
                            "answer_time": stamp,
                        },
                    )
                case cmd.CallEnded():
                    duration = round(fact.talk_seconds)
                    await self._calls.update(
                        fact.call_id,
                        at,
                        "ended",
                        {
                            "status": fact.outcome.value,
                            "reason": fact.reason.value,
                            "end_time": stamp,
                            "duration": duration,
                            "wait_seconds": round(fact.wait_seconds, 3),
                            "queue_id": fact.queue_id,
                        },
                        operator_id=fact.operator_id,
                        data={"reason": fact.reason.value},
                    )
                    self._bus.publish(
                        "call_ended",
                        {
                            "call_id": fact.call_id,
                            "end_time": stamp,
                            "duration": duration,
                            "status": fact.outcome.value,
                            "reason": fact.reason.value,
                        },
                    )

        return job

    def _operator_fact(
        self, fact: cmd.OperatorStatusChanged | cmd.OperatorLoggedIn, at: datetime
    ) -> Job:
        async def job() -> None:
            stamp = to_iso(at)
            if isinstance(fact, cmd.OperatorStatusChanged):
                await self._operators.status(fact.operator_id, fact.status.value, fact.reason, at)
                if fact.reason == "no_answer":
                    await self._operators.presence(fact.operator_id, "paused", "no_answer", at)
                self._bus.publish(
                    "operator_status_changed",
                    {
                        "operator_id": fact.operator_id,
                        "status": fact.status.value,
                        "reason": fact.reason,
                        "timestamp": stamp,
                    },
                )
            else:
                self._bus.publish(
                    "operator_logged_in",
                    {
                        "operator_id": fact.operator_id,
                        "extension": fact.extension,
                        "timestamp": stamp,
                    },
                )

        return job


# A full disk or a locked database must not lose a call record: retry, in order, for about
# half a minute (the call's later facts wait behind), then give up loudly.
RECORD_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


def _retrying(job: Job, call_id: str) -> Job:
    async def attempt() -> None:
        for delay in (*RECORD_RETRY_DELAYS, None):
            try:
                await job()
                return
            except DatabaseUnavailable as err:
                if delay is None:
                    log.error("call_record_not_written", call_id=call_id, error=err.detail)
                    raise
                log.warning("call_record_retry", call_id=call_id, error=err.detail, delay=delay)
                await asyncio.sleep(delay)

    return attempt


def _looks_like_leg(channel_id: str) -> bool:
    """Our legs are named `<call uuid>-<n>`; Asterisk's own ids are `<epoch>.<n>`."""
    head, _, tail = channel_id.rpartition("-")
    return len(head) == 36 and tail.isdigit()


async def _quietly(request: Awaitable[None]) -> None:
    """A channel or bridge already gone is the expected race, not an error."""
    with contextlib.suppress(AriNotFound):
        await request

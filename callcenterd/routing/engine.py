"""The routing engine: ``handle(event, now) -> commands``. Pure: no I/O, no clock, no asyncio.

It owns all routing state (waiting callers per queue, operator availability, ringing
legs, timers). Everything it decides can be replayed from its inputs: randomness comes
from a seeded generator, time from the `now` passed with each event, iteration follows
insertion or sort order (never a set's hash order), and timers fire when the dispatcher
sends ``Tick`` at (or after) ``next_deadline()``.

Costs, with n operators and q queues: an event touches only the queues of the operator or
call it concerns (O(queues per operator) index updates, each O(log n)); a pick walks one
queue's sorted available members from the front (O(log n + operators already tried));
queue lookup is a dictionary; timers live in a heap (O(log timers)). Only administrative
changes (a queue's configuration, a skills-only queue's membership) cost more.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace

from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.commands import CallOutcome, Command, EndReason
from callcenterd.domain.pauses import AUTOPAUSE_REASON
from callcenterd.domain.queues import OperatorProfile, OverflowAction, Presence, QueueConfig
from callcenterd.routing import callbacks
from callcenterd.routing.state import (
    CallPhase,
    CallState,
    Deadline,
    Deadlines,
    Due,
    OperatorState,
    QueueState,
    TransferState,
)
from callcenterd.routing.strategies import has_untried, pick, sort_key
from callcenterd.routing.wait_estimate import estimate_wait, remaining_handle

# Legs the engine ended (cancelled, timed out, lost a race) are remembered this long (in
# legs) so that an answer crossing the cancel is hung up again rather than ignored.
ENDED_LEGS_KEPT = 65_536
_PASSES = 4  # timer/assignment passes per event (see `handle`)
# How long a transfer target's phone rings when the call's queue rings forever (timeout 0).
TRANSFER_RING_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class EngineSettings:
    auto_answer_delay: float = 0.0
    max_call_duration: float = 0.0  # 0: unlimited
    queue_timeout: float = 300.0  # max wait of queues that set none; 0: unlimited
    autopause_after: int = 3  # consecutive unanswered rings; 0: never
    # A queue's handle time (talk + wrap-up) for wait estimates until its calls are measured.
    assumed_handle_seconds: float = 180.0
    callback_enabled: bool = False  # offered in queues that do not say (their override wins)
    callback_retry_delay: float = 300.0  # after the caller did not answer a callback's dial
    callback_max_attempts: int = 3  # dials of the caller before the callback has failed
    callback_ring_timeout: float = 30.0  # one dial of the caller


@dataclass(slots=True)
class _Routes:
    """Where a new call goes: by Stasis argument, by dialed number, else the default queue."""

    by_name: dict[str, str]
    by_number: dict[str, str]
    default: str | None


class RoutingEngine:
    def __init__(self, settings: EngineSettings | None = None, seed: int = 0) -> None:
        self.settings = settings or EngineSettings()
        self._rng = random.Random(seed)  # noqa: S311 - fair picks, not crypto  # nosec B311
        self.operators: dict[str, OperatorState] = {}
        self.queues: dict[str, QueueState] = {}
        self.calls: dict[str, CallState] = {}
        self._legs: dict[str, str] = {}  # ringing leg id -> call id
        self._talking: dict[str, str] = {}  # connected leg id -> call id
        self._ended_legs: dict[str, str] = {}  # leg id -> call id, the last ENDED_LEGS_KEPT
        self._ended_order: deque[str] = deque()
        self._listed_in: dict[str, dict[str, None]] = {}  # operator id -> queues listing them
        self._skill_queues: dict[str, None] = {}  # queues with skills and no member list
        self._routes: _Routes | None = None  # rebuilt after queue changes
        self._deadlines = Deadlines()
        self._dirty: set[str] = set()  # queues that may have a ready call and a free member
        # Last-operator routing: operator id -> the calls waiting for them, earliest first;
        # and the operators among them who may have become free.
        self._reserved: dict[str, dict[str, None]] = {}
        self._reserved_check: dict[str, None] = {}
        self._seq = 0
        self._callbacks: dict[tuple[str, str], str] = {}  # (queue, number) -> pending entry
        # A callback's dial of the caller, and its operator's leg meanwhile -> entry id
        self._dial_backs: dict[str, str] = {}

    # --- the one entry point ----------------------------------------------------------------
    def handle(self, event: ev.Event, now: float) -> list[Command]:
        out: list[Command] = []
        match event:
            case ev.Tick():
                pass  # the timers below are all it is for
            case ev.CallArrived():
                self._arrive(event, now, out)
            case ev.CallResumed():
                self._resume(event, now, out)
            case ev.CallerHungUp(call_id=call_id):
                self._caller_hung_up(call_id, now, out)
            case ev.CallLost(call_id=call_id):
                self._caller_hung_up(call_id, now, out, lost=True)
            case ev.LegAnswered() | ev.LegFailed() | ev.LegHungUp() if (
                event.leg_id in self._dial_backs
            ):
                callbacks.leg_event(self, event, now, out)
            case ev.CallerDigit():
                callbacks.digit(self, event, now, out)
            case ev.CallbackAdded():
                callbacks.add(self, event, now, out)
            case ev.CallbackCancelled(call_id=call_id):
                callbacks.cancel(self, call_id, now, out)
            case ev.CallbackRescheduled(call_id=call_id, not_before=not_before):
                callbacks.reschedule(self, call_id, not_before, now, out)
            case ev.LegRinging():
                pass  # the phone rings: nothing to decide, the dispatcher records it
            case ev.LegAnswered(leg_id=leg_id):
                self._leg_answered(leg_id, now, out)
            case ev.LegFailed(leg_id=leg_id, reason=reason):
                self._leg_ended(leg_id, reason.value, now, out)
            case ev.LegHungUp(leg_id=leg_id):
                self._leg_hung_up(leg_id, now, out)
            case ev.OperatorUpserted(operator=profile):
                self._upsert_operator(profile, now, out)
            case ev.OperatorRemoved(operator_id=operator_id):
                self._remove_operator(operator_id, now, out)
            case ev.OperatorPresenceSet(operator_id=op_id, presence=presence, reason=reason):
                self._set_presence(op_id, presence, reason, now, out)
            case ev.OperatorReachability(operator_id=operator_id, reachable=reachable):
                self._set_reachable(operator_id, reachable, now, out)
            case ev.QueueUpserted(queue=queue):
                self._upsert_queue(queue, now, out)
            case ev.QueueRemoved(queue_id=queue_id):
                self._remove_queue(queue_id, now, out)
            case ev.HoldRequested(call_id=call_id):
                self._hold(call_id, now, out)
            case ev.UnholdRequested(call_id=call_id):
                self._unhold(call_id, now, out)
            case ev.TransferRequested():
                self._transfer(event, now, out)
            case ev.LegReplaced():
                self._phone_transferred(event, now, out)
            case ev.TransferCompleteRequested(call_id=call_id):
                self._complete_transfer(call_id, now, out)
            case ev.TransferCancelRequested(call_id=call_id):
                self._cancel_transfer(call_id, now, out)
            case ev.SettingsChanged():
                self.settings = replace(
                    self.settings,
                    auto_answer_delay=event.auto_answer_delay,
                    max_call_duration=event.max_call_duration,
                    queue_timeout=event.queue_timeout,
                    callback_enabled=event.callback_enabled,
                )
        # Timers due by `now` fire, then free operators meet ready callers. A retry set for
        # `now` (retry_delay 0) fires in a second pass, which cannot set another: two passes
        # suffice. The bound only matters for timers shorter than the resolution of `now`
        # (a ring timeout of 1e-9 s): those wait for the next Tick rather than spin here.
        for _ in range(_PASSES):
            self._fire_deadlines(now, out)
            self._assign(now, out)
            if not self._deadlines.due(now):
                break
        return out

    def next_deadline(self) -> float | None:
        """When the dispatcher should send the next Tick (None: no timer pending)."""
        while (deadline := self._deadlines.peek()) is not None:
            if self._live(deadline):
                return deadline.at
            self._deadlines.pop()  # stale: drop it rather than wake the dispatcher for it
        return None

    # --- read-only views (for the API's realtime figures) -------------------------------------
    def waiting_calls(self, queue_id: str) -> int:
        queue = self.queues.get(queue_id)
        return len(queue.waiting) if queue else 0

    def waiting_arrivals(self) -> list[tuple[str, float]]:
        """(queue id, arrival time) of every caller not yet connected (waiting or being rung)."""
        return [
            (call.queue_id, call.arrived_at)
            for call in self.calls.values()
            if call.phase is CallPhase.WAITING
        ]

    def queue_position(self, call_id: str) -> int | None:
        """1 = next in line in its queue (O(callers waiting in that queue))."""
        call = self.calls.get(call_id)
        if call is None or call.phase is not CallPhase.WAITING:
            return None
        return self._position(self.queues[call.queue_id], call)

    def estimated_wait(self, call_id: str, now: float) -> float | None:
        """Seconds a waiting caller should still wait (see routing/wait_estimate.py); 0 while
        an operator is being rung for them; None when not waiting or nobody serves the queue.
        O(callers waiting in the queue + its members)."""
        call = self.calls.get(call_id)
        if call is None or call.phase is not CallPhase.WAITING:
            return None
        if call.legs:
            return 0.0
        queue = self.queues[call.queue_id]
        key = call.sort_key()
        ahead = sum(
            1
            for other_id in queue.waiting
            if not (other := self.calls[other_id]).legs and other.sort_key() < key
        )
        mean = queue.handle.seconds
        free_in = [
            slot
            for operator_id in queue.members
            for slot in self._free_in(self.operators[operator_id], queue, mean, now)
        ]
        return estimate_wait(ahead, free_in, mean)

    def _free_in(
        self, operator: OperatorState, queue: QueueState, mean: float, now: float
    ) -> list[float]:
        """Seconds until each of an operator's call slots is free (none if not taking calls)."""
        if operator.profile.presence is not Presence.ONLINE or not operator.reachable:
            return []
        wrapup = queue.config.wrapup_seconds
        slots = [
            remaining_handle(mean, now - self.calls[call_id].connected_at) + wrapup
            for call_id in operator.talking
            if call_id in self.calls
        ]
        slots += [mean] * len(operator.ringing)  # the caller rung will most likely take them
        idle = operator.profile.max_concurrent_calls - len(slots)
        return slots + [max(0.0, operator.wrapup_until - now)] * max(0, idle)

    def _position(self, queue: QueueState, call: CallState) -> int:
        key = call.sort_key()
        return 1 + sum(1 for other in queue.waiting if self.calls[other].sort_key() < key)

    # --- calls --------------------------------------------------------------------------------
    def _resolve_queue(self, event: ev.CallArrived) -> QueueState | None:
        routes = self._routes
        if routes is None:
            routes = self._routes = _Routes({}, {}, None)
            for queue in self.queues.values():  # the first queue declaring a name wins
                config = queue.config
                routes.by_name.setdefault(config.asterisk_name, config.id)
                for number in config.numbers:
                    routes.by_number.setdefault(number, config.id)
                if config.is_default and routes.default is None:
                    routes.default = config.id
        queue_id = None
        if event.queue_hint:
            queue_id = routes.by_name.get(event.queue_hint)
        if queue_id is None and event.called_number:
            queue_id = routes.by_number.get(event.called_number)
        if queue_id is None:
            queue_id = routes.default
        return self.queues.get(queue_id) if queue_id is not None else None

    def _arrive(self, event: ev.CallArrived, now: float, out: list[Command]) -> None:
        if event.call_id in self.calls:
            return
        queue = self._resolve_queue(event)
        arrived = event.arrived_at if event.arrived_at is not None else now
        if queue is None or not queue.config.is_active:
            queue_id = queue.config.id if queue is not None else None
            out.append(cmd.HangupCaller(event.call_id, EndReason.REJECTED))
            out.append(_ended(event.call_id, EndReason.REJECTED, queue_id, now - arrived))
            return
        if not queue.config.join_empty and not queue.logged_in:
            out.append(cmd.HangupCaller(event.call_id, EndReason.NO_OPERATOR))
            out.append(_ended(event.call_id, EndReason.NO_OPERATOR, queue.config.id, now - arrived))
            return
        self._seq += 1
        call = CallState(event.call_id, event.caller_number, queue.config.id, arrived, self._seq)
        call.leg_count = event.legs_used
        call.priority = event.priority
        # A re-adopted call (after a restart) heard its greeting the first time.
        call.greeting_due = queue.config.greeting is not None and event.arrived_at is None
        self.calls[call.id] = call
        if event.last_operator is not None:
            self._reserve(call, queue, event.last_operator, now)
        if event.talked is not None:  # answered before the restart: a transferred caller
            call.answered = True
            call.last_operator = event.talked.operator_id
            call.connected_at = event.talked.connected_at
            call.talked = event.talked.seconds
            self._enqueue(call, queue, now, out, wait_from=now)
            out.append(cmd.HoldCaller(call.id, queue.config.music_class))
            return
        self._enqueue(call, queue, now, out, wait_from=arrived)
        if self.settings.auto_answer_delay > 0 and event.arrived_at is None:
            self._deadlines.add(now + self.settings.auto_answer_delay, Due.ANSWER, call.id)
        else:
            self._answer(call, out)

    def _enqueue(
        self,
        call: CallState,
        queue: QueueState,
        now: float,
        out: list[Command],
        *,
        wait_from: float,
        moved_from: str | None = None,
    ) -> None:
        config = queue.config
        call.queue_id = config.id
        queue.waiting[call.id] = None
        queue.push_ready(call)
        self._dirty.add(config.id)
        max_wait = (
            config.max_wait_time
            if config.max_wait_time is not None
            else self.settings.queue_timeout
        )
        if max_wait > 0:
            # A re-adopted call keeps the wait it already had; an overflowed one starts afresh.
            self._deadlines.add(max(now, wait_from + max_wait), Due.MAX_WAIT, call.id, call.seq)
        if config.announce_every > 0:
            self._deadlines.add(now + config.announce_every, Due.ANNOUNCE, call.id, call.seq)
        callbacks.arm_offer(self, call, config, now, wait_from)
        # A fresh arrival without priority is last in line (priorities are never negative);
        # a moved, re-adopted or prioritised call has its place found.
        fresh = moved_from is None and call.arrived_at == now and call.priority == 0
        position = len(queue.waiting) if fresh else self._position(queue, call)
        out.append(cmd.CallQueued(call.id, config.id, position, moved_from))

    def _answer(self, call: CallState, out: list[Command]) -> None:
        if call.answered or call.phase is not CallPhase.WAITING:
            return
        call.answered = True
        out.append(cmd.AnswerCaller(call.id))
        config = self.queues[call.queue_id].config
        out.append(cmd.HoldCaller(call.id, config.music_class))
        if call.greeting_due and config.greeting is not None:
            call.greeting_due = False
            out.append(cmd.GreetCaller(call.id, config.greeting))

    # --- last-operator routing ---------------------------------------------------------------
    def _reserve(self, call: CallState, queue: QueueState, operator_id: str, now: float) -> None:
        """Keep a returning caller for the operator who served them last, for a while: only
        if the queue asks, and that operator serves it and is online (not paused)."""
        wait = queue.config.last_operator_wait
        operator = self.operators.get(operator_id)
        if wait <= 0 or operator is None or operator_id not in queue.members:
            return
        if operator.profile.presence is not Presence.ONLINE or not operator.reachable:
            return
        call.reserved_for = operator_id
        self._reserved.setdefault(operator_id, {})[call.id] = None
        self._reserved_check[operator_id] = None
        self._deadlines.add(now + wait, Due.RESERVATION_END, call.id, call.seq)

    def _unreserve(self, call: CallState) -> None:
        """The caller waits for anyone again (the caller is put back in line by the caller)."""
        operator_id = call.reserved_for
        if operator_id is None:
            return
        call.reserved_for = None
        waiting = self._reserved.get(operator_id)
        if waiting is not None:
            waiting.pop(call.id, None)
            if not waiting:
                del self._reserved[operator_id]

    def _release(self, call: CallState) -> None:
        """Back in line for every member, in their original place."""
        self._unreserve(call)
        queue = self.queues[call.queue_id]
        queue.push_ready(call)
        self._dirty.add(queue.config.id)

    def _serve_reservations(self, now: float, out: list[Command]) -> None:
        """Ring operators who became free for the earliest caller waiting for them."""
        while self._reserved_check:
            operator_id = next(iter(self._reserved_check))
            del self._reserved_check[operator_id]
            operator = self.operators.get(operator_id)
            waiting = self._reserved.get(operator_id)
            if operator is None or not waiting:
                continue
            if operator.profile.presence is not Presence.ONLINE or not operator.reachable:
                for call_id in list(waiting):  # nobody to wait for any more
                    self._release(self.calls[call_id])
                continue
            if not operator.is_available(now):
                continue
            call = self.calls[next(iter(waiting))]
            # One ring: unanswered, the caller goes back in line for everyone.
            self._unreserve(call)
            self._ring(call, self.queues[call.queue_id], [operator_id], now, out)

    def _leave_queue(self, call: CallState, now: float, out: list[Command], outcome: str) -> None:
        """Take a waiting call out of its queue, cancelling whatever rings for it."""
        self._unreserve(call)
        self.queues[call.queue_id].waiting.pop(call.id, None)
        for leg_id in list(call.legs):
            out.append(cmd.CancelLeg(call.id, leg_id))
            self._drop_leg(call, leg_id, now, out, outcome)

    def _finish(self, call: CallState) -> None:
        self.calls.pop(call.id, None)
        if call.connected_leg is not None:
            self._talking.pop(call.connected_leg, None)

    def _caller_hung_up(
        self, call_id: str, now: float, out: list[Command], *, lost: bool = False
    ) -> None:
        """The caller is gone: hung up, or (`lost`) vanished while nobody was watching."""
        call = self.calls.get(call_id)
        if call is None or (call.callback is not None and not call.callback.bridged):
            return  # a callback has no caller channel until bridged: its dial tells its end
        if call.phase is CallPhase.WAITING:
            self._leave_queue(call, now, out, "cancelled")
            call.transfer = None
            reason = EndReason.LOST if lost else EndReason.ABANDONED
            out.append(self._unanswered_end(call, reason, now))
            self._finish(call)
            return
        assert call.connected_leg is not None
        out.append(cmd.CancelLeg(call.id, call.connected_leg))
        self._drop_consult(call, now, out)
        self._end_connected(call, EndReason.LOST if lost else EndReason.CALLER_HANGUP, now, out)

    def _unanswered_end(self, call: CallState, reason: EndReason, now: float) -> cmd.CallEnded:
        """A call ending while it waits: missed, unless an operator talked with it before
        (a transferred caller): then completed by the caller, to the last operator."""
        if call.last_operator is None:
            return _ended(call.id, reason, call.queue_id, now - call.arrived_at)
        if reason is EndReason.ABANDONED:
            reason = EndReason.CALLER_HANGUP
        wait = call.connected_at - call.arrived_at
        return cmd.CallEnded(
            call.id,
            CallOutcome.COMPLETED,
            reason,
            call.queue_id,
            call.last_operator,
            wait,
            call.talked,
        )

    def _end_connected(
        self, call: CallState, reason: EndReason, now: float, out: list[Command]
    ) -> None:
        operator_id = call.operator_id
        held = self._stop_hold(call, now)
        out.append(
            cmd.CallEnded(
                call.id,
                CallOutcome.COMPLETED,
                reason,
                call.queue_id,
                operator_id or call.last_operator,
                call.connected_at - call.arrived_at,
                call.talked + now - call.segment_at,
                held,
            )
        )
        self._finish(call)
        if operator_id is not None:  # None: a phone transfer to a number no operator has
            self._release_operator(call, operator_id, now, out)

    def _release_operator(
        self, call: CallState, operator_id: str, now: float, out: list[Command]
    ) -> None:
        """The operator's part of the call is over: their stats, wrap-up, availability."""
        operator = self.operators.get(operator_id)
        if operator is None:
            return
        operator.talking.discard(call.id)
        queue = self.queues.get(call.queue_id)
        if queue is not None:
            queue.handle.add(now - call.connected_at + queue.config.wrapup_seconds)
            stats = queue.member_stats(operator_id)
            stats.last_call_end = now
            stats.calls_completed += 1
            queue.available.rekey(operator_id)  # leastrecent / fewestcalls order by these
            if queue.config.wrapup_seconds > 0:
                operator.wrapup_until = max(
                    operator.wrapup_until, now + queue.config.wrapup_seconds
                )
                self._deadlines.add(operator.wrapup_until, Due.WRAPUP_END, operator_id)
        self._refresh(operator, now, out)

    # --- legs ---------------------------------------------------------------------------------
    def _ring(
        self,
        call: CallState,
        queue: QueueState,
        operator_ids: Iterable[str],
        now: float,
        out: list[Command],
    ) -> None:
        timeout = queue.config.ring_timeout
        for operator_id in operator_ids:
            call.tried.add(operator_id)
            queue.rr_last = operator_id
            self._ring_one(call, self.operators[operator_id], timeout, now, out)

    def _ring_one(
        self,
        call: CallState,
        operator: OperatorState,
        timeout: float,
        now: float,
        out: list[Command],
    ) -> str:
        leg_id = call.next_leg_id()
        call.legs[leg_id] = operator.id
        self._legs[leg_id] = call.id
        operator.ringing[leg_id] = None
        out.append(
            cmd.RingOperator(
                call.id,
                leg_id,
                operator.id,
                operator.profile.extension,
                call.caller_number,
                timeout,
            )
        )
        if timeout > 0:  # 0: ring until answered, failed, or the caller's max wait
            self._deadlines.add(now + timeout, Due.RING_TIMEOUT, leg_id)
        self._refresh(operator, now, out)
        return leg_id

    def _drop_leg(
        self, call: CallState, leg_id: str, now: float, out: list[Command], outcome: str
    ) -> None:
        operator_id = call.legs.pop(leg_id)
        self._legs.pop(leg_id, None)
        self._ended_legs[leg_id] = call.id
        self._ended_order.append(leg_id)
        if len(self._ended_order) > ENDED_LEGS_KEPT:
            self._ended_legs.pop(self._ended_order.popleft(), None)
        out.append(cmd.LegEnded(call.id, leg_id, operator_id, outcome))
        operator = self.operators.get(operator_id)
        if operator is None:
            return
        operator.ringing.pop(leg_id, None)
        transfer = call.transfer
        if outcome == "no_answer" and (transfer is None or transfer.leg_id != leg_id):
            operator.misses += 1
            limit = self.settings.autopause_after
            if limit and operator.misses >= limit and operator.profile.presence is Presence.ONLINE:
                operator.misses = 0
                self._set_presence(operator_id, Presence.PAUSED, AUTOPAUSE_REASON, now, out)
                return
        self._refresh(operator, now, out)

    def _leg_ended(self, leg_id: str, outcome: str, now: float, out: list[Command]) -> None:
        """A ringing leg is over without an answer; the call rings on when it has none left."""
        call_id = self._legs.get(leg_id)
        if call_id is None:
            return  # unknown, already ended, or talking (its hang-up is LegHungUp)
        call = self.calls[call_id]
        self._drop_leg(call, leg_id, now, out, outcome)
        if call.transfer is not None and call.transfer.leg_id == leg_id:
            self._transfer_failed(call, outcome, now, out)
            return
        if call.legs:
            return  # others still ring (ringall)
        queue = self.queues[call.queue_id]
        if has_untried(queue, call.tried):
            queue.push_ready(call)  # the next operator rings at once
            self._dirty.add(queue.config.id)
        else:
            self._retry_later(call, queue, now)  # the round is over

    def _leg_answered(self, leg_id: str, now: float, out: list[Command]) -> None:
        call_id = self._legs.get(leg_id)
        if call_id is None:
            ended_call = self._ended_legs.get(leg_id)
            if ended_call is not None:
                # Answered after the engine ended it (a cancel crossing the answer, or the
                # cancel reaching the adapter before the channel existed): hang it up again.
                out.append(cmd.CancelLeg(ended_call, leg_id))
            return
        call = self.calls[call_id]
        if call.phase is CallPhase.CONNECTED:
            self._consult_answered(call, leg_id, now, out)
            return
        queue = self.queues[call.queue_id]
        operator_id = call.legs.pop(leg_id)
        self._legs.pop(leg_id)
        for other in list(call.legs):
            out.append(cmd.CancelLeg(call.id, other))
            self._drop_leg(call, other, now, out, "cancelled")
        queue.waiting.pop(call.id, None)
        if not call.answered:  # the operator beat the auto-answer delay
            call.answered = True
            out.append(cmd.AnswerCaller(call.id))
        call.phase = CallPhase.CONNECTED
        call.connected_leg = leg_id
        self._talking[leg_id] = call.id
        call.operator_id = operator_id
        call.segment_at = now
        again = call.last_operator is not None  # a transferred call's next operator
        by_phone = call.transfer is not None and call.transfer.mode == "phone"
        call.transfer = None
        if not again:
            call.connected_at = now
        operator = self.operators[operator_id]
        operator.ringing.pop(leg_id, None)
        operator.talking.add(call.id)
        operator.misses = 0
        if call.callback is not None:  # the operator is ready: now the caller is dialed
            callbacks.operator_ready(self, call, leg_id, now, out)
            return
        if not by_phone:  # a phone transfer's leg is in the caller's bridge already
            out.append(cmd.ConnectCall(call.id, leg_id, operator_id))
        out.append(
            cmd.CallAnswered(call.id, leg_id, operator_id, now - call.arrived_at, transferred=again)
        )
        if self.settings.max_call_duration > 0 and not again:
            self._deadlines.add(
                now + self.settings.max_call_duration, Due.MAX_DURATION, call.id, now
            )
        self._refresh(operator, now, out)

    def _resume(self, event: ev.CallResumed, now: float, out: list[Command]) -> None:
        """Take back a call that was talking when the daemon restarted: the operator stays
        busy with it and its end is recorded as usual."""
        operator = self.operators.get(event.operator_id)
        if event.call_id in self.calls or operator is None or event.queue_id not in self.queues:
            return
        self._seq += 1
        call = CallState(
            event.call_id, event.caller_number, event.queue_id, event.arrived_at, self._seq
        )
        call.phase = CallPhase.CONNECTED
        call.answered = True
        call.connected_leg = event.leg_id
        call.operator_id = event.operator_id
        call.connected_at = call.segment_at = event.connected_at
        call.held_since = event.held_at
        self.calls[call.id] = call
        self._talking[event.leg_id] = call.id
        operator.talking.add(call.id)
        if event.finish_hold:
            out.append(cmd.ParkCaller(call.id, self._music(call), keep_talk=True))
        if self.settings.max_call_duration > 0:
            self._deadlines.add(
                event.connected_at + self.settings.max_call_duration,
                Due.MAX_DURATION,
                call.id,
                event.connected_at,
            )
        self._refresh(operator, now, out)

    def _leg_hung_up(self, leg_id: str, now: float, out: list[Command]) -> None:
        call_id = self._talking.get(leg_id)
        if call_id is not None:
            call = self.calls[call_id]
            if call.transfer is not None:
                self._hung_up_in_transfer(call, leg_id, now, out)
                return
            out.append(cmd.HangupCaller(call.id, EndReason.OPERATOR_HANGUP))
            self._end_connected(call, EndReason.OPERATOR_HANGUP, now, out)
            return
        # A ringing leg that went away before answering (the operator declined it).
        self._leg_ended(leg_id, "no_answer", now, out)

    # --- hold and transfers -------------------------------------------------------------------
    def _talking_call(self, call_id: str, out: list[Command]) -> CallState | None:
        """The call, when an operator is talking with it; else a refusal is answered."""
        call = self.calls.get(call_id)
        if call is None or call.phase is not CallPhase.CONNECTED:
            state = "not in progress" if call is None else "not answered by an operator"
            out.append(cmd.Refused(call_id, cmd.Refusal.NOT_ANSWERED, f"The call is {state}"))
            return None
        return call

    def _music(self, call: CallState) -> str:
        queue = self.queues.get(call.queue_id)
        return queue.config.music_class if queue is not None else "default"

    def _stop_hold(self, call: CallState, now: float) -> float:
        """End a running hold; answer its seconds (0 when the caller was not held)."""
        if call.held_since is None:
            return 0.0
        held, call.held_since = now - call.held_since, None
        return held

    def _hold(self, call_id: str, now: float, out: list[Command]) -> None:
        call = self._talking_call(call_id, out)
        if call is None:
            return
        assert call.operator_id is not None
        if call.transfer is not None:
            out.append(_refused(call, cmd.Refusal.TRANSFER_IN_PROGRESS))
        elif call.held_since is not None:
            out.append(cmd.Refused(call_id, cmd.Refusal.ALREADY_HELD, "The call is already held"))
        else:
            call.held_since = now
            out.append(cmd.ParkCaller(call_id, self._music(call), keep_talk=True))
            out.append(cmd.CallHeld(call_id, call.operator_id))

    def _unhold(self, call_id: str, now: float, out: list[Command]) -> None:
        call = self._talking_call(call_id, out)
        if call is None:
            return
        assert call.operator_id is not None
        if call.transfer is not None:
            out.append(_refused(call, cmd.Refusal.TRANSFER_IN_PROGRESS))
        elif call.held_since is None:
            out.append(cmd.Refused(call_id, cmd.Refusal.NOT_HELD, "The call is not on hold"))
        else:
            out.append(cmd.ResumeCaller(call_id))
            out.append(cmd.CallUnheld(call_id, call.operator_id, self._stop_hold(call, now)))

    def _target_problem(self, call: CallState, event: ev.TransferRequested, now: float) -> str:
        """Why the transfer cannot go to its target ('' when it can)."""
        if event.kind is ev.TargetKind.QUEUE:
            queue = self.queues.get(event.target)
            if queue is None or not queue.config.is_active:
                return cmd.Refusal.TARGET_UNKNOWN
            return ""
        if event.kind is ev.TargetKind.EXTERNAL:
            unsupported = event.mode is ev.TransferMode.ATTENDED or not event.context
            return cmd.Refusal.UNSUPPORTED if unsupported else ""
        operator = self.operators.get(event.target)
        if operator is None:
            return cmd.Refusal.TARGET_UNKNOWN
        if operator.id == call.operator_id:
            return cmd.Refusal.TARGET_SELF
        if not operator.is_logged_in():
            return cmd.Refusal.TARGET_OFFLINE
        if not operator.is_available(now):
            return cmd.Refusal.TARGET_BUSY
        return ""

    def _transfer(self, event: ev.TransferRequested, now: float, out: list[Command]) -> None:
        call = self._talking_call(event.call_id, out)
        if call is None:
            return
        if call.transfer is not None:
            out.append(_refused(call, cmd.Refusal.TRANSFER_IN_PROGRESS))
            return
        problem = self._target_problem(call, event, now)
        if problem:
            refusal = cmd.Refusal(problem)
            detail = _TARGET_PROBLEMS[refusal].format(kind=event.kind.value, target=event.target)
            out.append(cmd.Refused(call.id, refusal, detail))
            return
        if event.mode is ev.TransferMode.ATTENDED:
            self._consult(call, self.operators[event.target], now, out)
            return
        self._hand_over(call, event.mode.value, event.kind.value, event.target, None, now, out)
        match event.kind:
            case ev.TargetKind.QUEUE:
                self._requeue(call, self.queues[event.target], now, out)
            case ev.TargetKind.OPERATOR:
                self._ring_target(call, self.operators[event.target], now, out)
            case ev.TargetKind.EXTERNAL:
                assert event.context is not None
                out.append(cmd.SendToDialplan(call.id, event.context, event.target))
                out.append(
                    cmd.CallEnded(
                        call.id,
                        CallOutcome.COMPLETED,
                        EndReason.TRANSFERRED,
                        call.queue_id,
                        call.last_operator,
                        call.connected_at - call.arrived_at,
                        call.talked,
                    )
                )
                self._finish(call)

    def _hand_over(
        self,
        call: CallState,
        mode: str,
        kind: str,
        target: str,
        to_leg: str | None,
        now: float,
        out: list[Command],
    ) -> None:
        """The operator leaves the call: their leg is hung up, their part recorded, and they
        become free (after the queue's wrap-up)."""
        operator_id, leg_id = call.operator_id, call.connected_leg
        assert operator_id is not None and leg_id is not None
        held = self._stop_hold(call, now)
        call.talked += now - call.segment_at
        call.last_operator = operator_id
        self._talking.pop(leg_id, None)
        out.append(cmd.CancelLeg(call.id, leg_id))
        out.append(
            cmd.CallTransferred(call.id, mode, operator_id, leg_id, kind, target, to_leg, held)
        )
        self._release_operator(call, operator_id, now, out)

    def _leave_conversation(self, call: CallState) -> None:
        call.phase = CallPhase.WAITING
        call.connected_leg = None
        call.operator_id = None
        call.tried.clear()
        call.retry_pending = False

    def _requeue(self, call: CallState, queue: QueueState, now: float, out: list[Command]) -> None:
        """Back in line in `queue`, at the place its first arrival gives it (the wait limit
        starts again: the caller was talking meanwhile)."""
        self._leave_conversation(call)
        out.append(cmd.ParkCaller(call.id, queue.config.music_class, keep_talk=False))
        moved_from = call.queue_id
        self._seq += 1
        call.seq = self._seq
        self._enqueue(call, queue, now, out, wait_from=now, moved_from=moved_from)

    def _ring_target(
        self, call: CallState, operator: OperatorState, now: float, out: list[Command]
    ) -> None:
        """Blind to an operator: the caller waits with music, out of every queue, while only
        that operator's phone rings."""
        self._leave_conversation(call)
        out.append(cmd.ParkCaller(call.id, self._music(call), keep_talk=False))
        from_operator = call.last_operator
        assert from_operator is not None
        leg_id = self._ring_one(call, operator, self._transfer_ring_timeout(call), now, out)
        call.transfer = TransferState("blind", from_operator, operator.id, leg_id)
        out.append(
            cmd.TransferStarted(call.id, "blind", from_operator, "operator", operator.id, leg_id)
        )

    def _transfer_ring_timeout(self, call: CallState) -> float:
        queue = self.queues.get(call.queue_id)
        timeout = queue.config.ring_timeout if queue is not None else 0.0
        return timeout if timeout > 0 else TRANSFER_RING_TIMEOUT

    def _consult(
        self, call: CallState, operator: OperatorState, now: float, out: list[Command]
    ) -> None:
        """Attended: the caller is held, the target's phone rings for the operator."""
        assert call.operator_id is not None
        held_before = call.held_since is not None
        if not held_before:
            call.held_since = now
            out.append(cmd.ParkCaller(call.id, self._music(call), keep_talk=True))
        leg_id = self._ring_one(call, operator, self._transfer_ring_timeout(call), now, out)
        call.transfer = TransferState(
            "attended", call.operator_id, operator.id, leg_id, held_before=held_before
        )
        out.append(
            cmd.TransferStarted(
                call.id, "attended", call.operator_id, "operator", operator.id, leg_id
            )
        )

    def _consult_answered(
        self, call: CallState, leg_id: str, now: float, out: list[Command]
    ) -> None:
        transfer = call.transfer
        assert transfer is not None and transfer.leg_id == leg_id
        call.legs.pop(leg_id, None)
        self._legs.pop(leg_id, None)
        self._talking[leg_id] = call.id
        transfer.answered = True
        target = self.operators[transfer.target]
        target.ringing.pop(leg_id, None)
        target.talking.add(call.id)
        target.misses = 0
        out.append(cmd.JoinLeg(call.id, leg_id))
        out.append(cmd.ConsultAnswered(call.id, leg_id, target.id))
        self._refresh(target, now, out)

    def _complete_transfer(self, call_id: str, now: float, out: list[Command]) -> None:
        call = self._talking_call(call_id, out)
        if call is None:
            return
        transfer = call.transfer
        if transfer is None or transfer.mode != "attended":
            out.append(_refused(call, cmd.Refusal.NO_TRANSFER))
        elif not transfer.answered:
            out.append(_refused(call, cmd.Refusal.CONSULT_NOT_ANSWERED))
        else:
            self._join_target(call, transfer, now, out)

    def _join_target(
        self, call: CallState, transfer: TransferState, now: float, out: list[Command]
    ) -> None:
        """The consulted operator takes the call over; the consulting one leaves."""
        self._hand_over(call, "attended", "operator", transfer.target, transfer.leg_id, now, out)
        call.transfer = None
        call.connected_leg = transfer.leg_id
        call.operator_id = transfer.target
        call.segment_at = now
        out.append(cmd.ResumeCaller(call.id))

    def _cancel_transfer(self, call_id: str, now: float, out: list[Command]) -> None:
        call = self._talking_call(call_id, out)
        if call is None:
            return
        transfer = call.transfer
        if transfer is None or transfer.mode != "attended":
            out.append(_refused(call, cmd.Refusal.NO_TRANSFER))
            return
        self._drop_consult(call, now, out)
        self._back_to_operator(call, transfer, "cancelled", now, out)

    def _drop_consult(self, call: CallState, now: float, out: list[Command]) -> None:
        """The consulted leg is hung up (already gone when its operator hung up)."""
        transfer = call.transfer
        if transfer is None or transfer.mode != "attended":
            return
        out.append(cmd.CancelLeg(call.id, transfer.leg_id))
        if transfer.answered:
            self._talking.pop(transfer.leg_id, None)
            target = self.operators.get(transfer.target)
            if target is not None:
                target.talking.discard(call.id)
                self._refresh(target, now, out)
        elif transfer.leg_id in call.legs:
            self._drop_leg(call, transfer.leg_id, now, out, "cancelled")

    def _back_to_operator(
        self,
        call: CallState,
        transfer: TransferState,
        reason: str,
        now: float,
        out: list[Command],
    ) -> None:
        """An attended transfer that did not happen: the caller talks with the operator
        again (or stays on hold, when they were held before it began)."""
        call.transfer = None
        held = 0.0
        if not transfer.held_before:
            held = self._stop_hold(call, now)
            out.append(cmd.ResumeCaller(call.id))
        out.append(
            cmd.TransferFailed(
                call.id,
                "attended",
                transfer.from_operator,
                transfer.target,
                transfer.leg_id,
                reason,
                transfer.answered,
                held,
            )
        )

    def _transfer_failed(
        self, call: CallState, reason: str, now: float, out: list[Command]
    ) -> None:
        """The target's phone did not take the call (busy, no answer, declined)."""
        transfer = call.transfer
        assert transfer is not None
        if transfer.mode == "attended":
            self._back_to_operator(call, transfer, reason, now, out)
            return
        call.transfer = None
        if transfer.mode == "phone":  # the caller was bridged with the leg that failed
            out.append(cmd.ParkCaller(call.id, self._music(call), keep_talk=False))
        out.append(
            cmd.TransferFailed(
                call.id,
                transfer.mode,
                transfer.from_operator,
                transfer.target,
                transfer.leg_id,
                reason,
                False,
                0.0,
            )
        )
        queue = self.queues.get(call.queue_id)
        if queue is None:
            out.append(cmd.HangupCaller(call.id, EndReason.REJECTED))
            out.append(self._unanswered_end(call, EndReason.REJECTED, now))
            self._finish(call)
            return
        self._seq += 1
        call.seq = self._seq
        self._enqueue(call, queue, now, out, wait_from=now)

    def _phone_transferred(self, event: ev.LegReplaced, now: float, out: list[Command]) -> None:
        """The operator transferred the call from their phone (SIP REFER): Asterisk bridged
        the caller with a Local channel to the target. An operator's extension is followed
        like a blind transfer to them (their part starts when they answer, at once after a
        consultation; a failure sends the caller back to their queue); another number talks
        on with the call, no operator's."""
        call_id = self._talking.get(event.leg_id)
        call = self.calls.get(call_id) if call_id is not None else None
        if call is None or call.connected_leg != event.leg_id:
            return
        if call.transfer is not None:  # an API transfer was under way: the phone's wins
            self._drop_consult(call, now, out)
            call.transfer = None
        target = self.operators.get(event.operator_id or "")
        kind, name = ("operator", target.id) if target else ("external", event.number)
        from_operator = call.operator_id
        assert from_operator is not None
        self._hand_over(call, "phone", kind, name, None, now, out)
        if target is None:
            call.connected_leg, call.operator_id, call.segment_at = event.channel_id, None, now
            self._talking[event.channel_id] = call.id
            return
        self._leave_conversation(call)
        call.legs[event.channel_id] = target.id
        self._legs[event.channel_id] = call.id
        target.ringing[event.channel_id] = None
        call.transfer = TransferState("phone", from_operator, target.id, event.channel_id)
        out.append(cmd.TransferRinging(call.id, event.channel_id, target.id))
        if event.answered:
            self._leg_answered(event.channel_id, now, out)
            return
        self._refresh(target, now, out)

    def _hung_up_in_transfer(
        self, call: CallState, leg_id: str, now: float, out: list[Command]
    ) -> None:
        """A talking leg hung up while an attended transfer is under way."""
        transfer = call.transfer
        assert transfer is not None
        if leg_id == transfer.leg_id:  # the consulted operator hung up
            self._drop_consult(call, now, out)
            self._back_to_operator(call, transfer, "target_hung_up", now, out)
        elif transfer.answered:  # the consulting operator hung up: the transfer is done
            self._join_target(call, transfer, now, out)
        else:  # ... before the target answered: it goes on as a blind transfer
            self._hand_over(call, "blind", "operator", transfer.target, None, now, out)
            self._leave_conversation(call)
            call.held_since = None
            transfer.mode = "blind"
            out.append(cmd.ParkCaller(call.id, self._music(call), keep_talk=False))

    # --- timers -------------------------------------------------------------------------------
    def _live(self, deadline: Deadline) -> bool:
        """Whether a timer still means something (the heap keeps stale ones until they surface)."""
        ref = deadline.ref
        match deadline.due:
            case Due.RING_TIMEOUT:
                return ref in self._legs
            case Due.WRAPUP_END:
                operator = self.operators.get(ref)
                return operator is not None and operator.wrapup_until == deadline.at
        call = self.calls.get(ref)
        if call is None:
            return False
        match deadline.due:
            case Due.ANSWER:
                return not call.answered and call.phase is CallPhase.WAITING
            case Due.RETRY:
                return call.retry_pending and call.retry_at == deadline.at
            case Due.MAX_WAIT | Due.ANNOUNCE | Due.CALLBACK_OFFER:
                return call.phase is CallPhase.WAITING and call.seq == deadline.token
            case Due.RESERVATION_END:
                return call.reserved_for is not None and call.seq == deadline.token
            case Due.MAX_DURATION:
                return call.phase is CallPhase.CONNECTED and call.connected_at == deadline.token

    def _fire_deadlines(self, now: float, out: list[Command]) -> None:
        while self._deadlines.due(now):
            deadline = self._deadlines.pop()
            if self._live(deadline):
                self._fire(deadline, now, out)

    def _fire(self, deadline: Deadline, now: float, out: list[Command]) -> None:
        ref = deadline.ref
        match deadline.due:
            case Due.RING_TIMEOUT:
                out.append(cmd.CancelLeg(self._legs[ref], ref))
                self._leg_ended(ref, "no_answer", now, out)
            case Due.WRAPUP_END:
                self._refresh(self.operators[ref], now, out)
            case Due.ANSWER:
                self._answer(self.calls[ref], out)
            case Due.RETRY:
                call = self.calls[ref]
                call.retry_pending = False
                self.queues[call.queue_id].push_ready(call)
                self._dirty.add(call.queue_id)
            case Due.MAX_WAIT:
                self._overflow(self.calls[ref], now, out)
            case Due.ANNOUNCE:
                self._announce(self.calls[ref], now, out)
            case Due.RESERVATION_END:
                self._release(self.calls[ref])
            case Due.CALLBACK_OFFER:
                callbacks.offer(self, self.calls[ref], now, out)
            case Due.MAX_DURATION:
                call = self.calls[ref]
                assert call.connected_leg is not None
                out.append(cmd.CancelLeg(call.id, call.connected_leg))
                out.append(cmd.HangupCaller(call.id, EndReason.MAX_DURATION))
                self._end_connected(call, EndReason.MAX_DURATION, now, out)

    def _announce(self, call: CallState, now: float, out: list[Command]) -> None:
        """Tell a waiting caller their place, then again in `announce_every` seconds.

        Not while an operator is being rung for them (the answer would cut it short), and
        the head of the line hears "you are next" once, not every time round.
        """
        config = self.queues[call.queue_id].config
        self._deadlines.add(now + config.announce_every, Due.ANNOUNCE, call.id, call.seq)
        if call.legs or not call.answered:
            return
        position = self._position(self.queues[call.queue_id], call)
        if position == 1 and call.announced_position == 1:
            return
        call.announced_position = position
        wait = self.estimated_wait(call.id, now) if config.announce_wait else None
        out.append(cmd.AnnounceWait(call.id, position, wait))

    def _retry_later(self, call: CallState, queue: QueueState, now: float) -> None:
        """Everyone available was tried this round: wait retry_delay, then a new round."""
        call.tried.clear()
        call.retry_pending = True
        call.retry_at = now + queue.config.retry_delay
        self._deadlines.add(call.retry_at, Due.RETRY, call.id)

    def _overflow(self, call: CallState, now: float, out: list[Command]) -> None:
        queue = self.queues[call.queue_id]
        config = queue.config
        self._leave_queue(call, now, out, "cancelled")
        target = self.queues.get(config.overflow_queue_id or "")
        if (
            config.overflow_action is OverflowAction.QUEUE
            and target is not None
            and target is not queue
            and target.config.is_active
        ):
            self._seq += 1
            call.seq = self._seq  # a fresh max-wait timer for the new queue
            call.tried.clear()
            call.retry_pending = False
            self._enqueue(call, target, now, out, wait_from=now, moved_from=config.id)
            return
        wait = now - call.arrived_at
        if config.overflow_action is OverflowAction.DIALPLAN:
            out.append(cmd.ContinueInDialplan(call.id))
        else:
            out.append(cmd.HangupCaller(call.id, EndReason.TIMEOUT))
        if call.last_operator is None:
            out.append(_ended(call.id, EndReason.TIMEOUT, config.id, wait))
        else:
            out.append(self._unanswered_end(call, EndReason.TIMEOUT, now))
        self._finish(call)

    # --- operators ----------------------------------------------------------------------------
    def _refresh(self, operator: OperatorState, now: float, out: list[Command]) -> None:
        """Re-derive availability and shown status; publish changes to queues and facts."""
        operator_id = operator.profile.id
        queues = self.queues
        available = operator.is_available(now)
        if operator_id in self._reserved and (
            available or operator.profile.presence is not Presence.ONLINE or not operator.reachable
        ):
            self._reserved_check[operator_id] = None  # free for a caller, or gone for them
        if available != operator.available:
            operator.available = available
            if available:
                for queue_id in operator.queues:
                    queues[queue_id].available.add(operator_id)
                    self._dirty.add(queue_id)
            else:
                for queue_id in operator.queues:
                    queues[queue_id].available.discard(operator_id)
        logged_in = operator.is_logged_in()
        login = logged_in and not operator.logged_in
        if logged_in != operator.logged_in:
            operator.logged_in = logged_in
            for queue_id in operator.queues:
                if logged_in:
                    queues[queue_id].logged_in.add(operator_id)
                else:
                    queues[queue_id].logged_in.discard(operator_id)
        shown = (*operator.status(now), operator.pause_reason())
        if shown != operator.shown:
            operator.shown = shown
            out.append(cmd.OperatorStatusChanged(operator_id, *shown))
        if login:
            out.append(cmd.OperatorLoggedIn(operator_id, operator.profile.extension))

    def _set_profile(
        self, operator: OperatorState, profile: OperatorProfile, now: float, out: list[Command]
    ) -> None:
        """The one way a profile changes: presence rules apply however the change came."""
        before = operator.profile.presence
        operator.profile = profile
        if profile.presence is Presence.OFFLINE and before is not Presence.OFFLINE:
            self._cancel_ringing(operator, "cancelled", now, out)
        self._refresh(operator, now, out)

    def _upsert_operator(self, profile: OperatorProfile, now: float, out: list[Command]) -> None:
        operator = self.operators.get(profile.id)
        if operator is None:
            operator = self.operators[profile.id] = OperatorState(profile)
        else:
            if profile.presence is Presence.ONLINE and operator.profile.presence is not (
                Presence.ONLINE
            ):
                operator.misses = 0
            self._set_profile(operator, profile, now, out)
        self._index_operator(operator)
        self._refresh(operator, now, out)

    def _remove_operator(self, operator_id: str, now: float, out: list[Command]) -> None:
        operator = self.operators.get(operator_id)
        if operator is None:
            return
        self._set_presence(operator_id, Presence.OFFLINE, None, now, out)
        for queue_id in operator.queues:
            queue = self.queues[queue_id]
            queue.members.pop(operator_id, None)
            queue.available.discard(operator_id)
            queue.logged_in.discard(operator_id)
        del self.operators[operator_id]

    def _set_presence(
        self,
        operator_id: str,
        presence: Presence,
        reason: str | None,
        now: float,
        out: list[Command],
    ) -> None:
        operator = self.operators.get(operator_id)
        if operator is None:
            return
        if presence is Presence.ONLINE:
            operator.misses = 0
        pause_reason = reason if presence is Presence.PAUSED else None
        self._set_profile(
            operator,
            replace(operator.profile, presence=presence, pause_reason=pause_reason),
            now,
            out,
        )

    def _set_reachable(
        self, operator_id: str, reachable: bool, now: float, out: list[Command]
    ) -> None:
        operator = self.operators.get(operator_id)
        if operator is None or operator.reachable == reachable:
            return
        operator.reachable = reachable
        if not reachable:
            self._cancel_ringing(operator, "unreachable", now, out)
        self._refresh(operator, now, out)

    def _cancel_ringing(
        self, operator: OperatorState, outcome: str, now: float, out: list[Command]
    ) -> None:
        for leg_id in list(operator.ringing):
            call_id = self._legs.get(leg_id)
            if call_id is not None:
                out.append(cmd.CancelLeg(call_id, leg_id))
                self._leg_ended(leg_id, outcome, now, out)

    # --- queues -------------------------------------------------------------------------------
    def _index_operator(self, operator: OperatorState) -> None:
        """Recompute which queues an operator serves after their profile changed.

        Looks only at the queues that list them, the skills-only queues, and the queues they
        were in: never every queue.
        """
        queue_ids = dict.fromkeys(operator.queues)
        queue_ids.update(self._listed_in.get(operator.id, {}))
        queue_ids.update(self._skill_queues)
        for queue_id in queue_ids:
            self._index_member(self.queues[queue_id], operator)

    def _penalty(self, queue: QueueState, operator: OperatorState) -> int | None:
        """The operator's penalty in the queue, or None when they cannot take its calls."""
        needed = queue.config.required_skills
        if not needed <= operator.profile.skills:
            return None
        if queue.declared:
            return queue.declared.get(operator.id)
        return 0 if needed else None

    def _index_member(self, queue: QueueState, operator: OperatorState) -> None:
        queue_id = queue.config.id
        penalty = self._penalty(queue, operator)
        if penalty is None:
            queue.members.pop(operator.id, None)
            queue.available.discard(operator.id)
            queue.logged_in.discard(operator.id)
            operator.queues.pop(queue_id, None)
            return
        if operator.id not in queue.position:
            queue.position[operator.id] = len(queue.position)
        if queue.members.get(operator.id) != penalty:
            queue.members[operator.id] = penalty
            queue.available.rekey(operator.id)
        operator.queues[queue_id] = penalty
        if operator.available:
            queue.available.add(operator.id)
            self._dirty.add(queue_id)
        if operator.logged_in:
            queue.logged_in.add(operator.id)

    def _upsert_queue(self, config: QueueConfig, now: float, out: list[Command]) -> None:
        queue = self.queues.get(config.id)
        if queue is None:
            queue = self.queues[config.id] = QueueState(
                config, sort_key, self.settings.assumed_handle_seconds
            )
        for operator_id in queue.declared:
            self._listed_in.get(operator_id, {}).pop(config.id, None)
        for operator_id in queue.members:
            self.operators[operator_id].queues.pop(config.id, None)
        queue.config = config
        self._routes = None
        self._skill_queues.pop(config.id, None)
        if config.required_skills and not config.members:
            self._skill_queues[config.id] = None
        queue.declared = {m.operator_id: m.penalty for m in config.members}
        for operator_id in queue.declared:
            self._listed_in.setdefault(operator_id, {})[config.id] = None
        if queue.declared:
            candidates: Iterable[OperatorState] = (
                self.operators[op] for op in queue.declared if op in self.operators
            )
            queue.position = {op: index for index, op in enumerate(queue.declared)}
        else:
            candidates = self.operators.values()  # skills-only: O(operators), admin time only
        queue.members = {}
        queue.available.clear()
        queue.logged_in.clear()
        for operator in candidates:
            penalty = self._penalty(queue, operator)
            if penalty is None:
                continue
            queue.members[operator.id] = penalty
            queue.position.setdefault(operator.id, len(queue.position))
            operator.queues[config.id] = penalty
            if operator.available:
                queue.available.add(operator.id)
            if operator.logged_in:
                queue.logged_in.add(operator.id)
        self._dirty.add(config.id)

    def _remove_queue(self, queue_id: str, now: float, out: list[Command]) -> None:
        queue = self.queues.get(queue_id)
        if queue is None:
            return
        for operator_id in queue.members:
            self.operators[operator_id].queues.pop(queue_id, None)
        for operator_id in queue.declared:
            self._listed_in.get(operator_id, {}).pop(queue_id, None)
        self._skill_queues.pop(queue_id, None)
        self._routes = None
        for call_id in list(queue.waiting):
            call = self.calls[call_id]
            self._leave_queue(call, now, out, "cancelled")
            out.append(cmd.HangupCaller(call_id, EndReason.REJECTED))
            out.append(self._unanswered_end(call, EndReason.REJECTED, now))
            self._finish(call)
        del self.queues[queue_id]

    # --- assignment ---------------------------------------------------------------------------
    def _assign(self, now: float, out: list[Command]) -> None:
        """Ring operators for ready callers: higher queue priority first, then higher caller
        priority, then FIFO.

        Invariant after it returns: no queue has both a ready caller and an available
        member that caller has not tried. Only queues touched since ("dirty") can break it,
        so only those are looked at.
        """
        self._serve_reservations(now, out)
        while self._dirty:
            dirty, self._dirty = self._dirty, set()
            self._assign_round(dirty, now, out)

    def _assign_round(self, dirty: set[str], now: float, out: list[Command]) -> None:
        candidates: list[tuple[int, int, float, int, str]] = []
        for queue_id in dirty:
            entry = self._head_entry(queue_id)
            if entry is not None:
                heapq.heappush(candidates, entry)
        while candidates:
            queue_id = heapq.heappop(candidates)[-1]
            queue = self.queues.get(queue_id)
            if queue is None or not queue.available:
                continue  # a higher-priority queue took the operators it shared
            call = queue.head_ready(self.calls)
            if call is None:
                continue
            chosen = pick(queue, call.tried, self._rng)
            if chosen:
                self._ring(call, queue, chosen, now, out)
            else:
                self._retry_later(call, queue, now)  # the next caller may ring them
            entry = self._head_entry(queue_id)
            if entry is not None:
                heapq.heappush(candidates, entry)

    def _head_entry(self, queue_id: str) -> tuple[int, int, float, int, str] | None:
        """Across queues: the queue's priority first (app_queue's weight), then its head
        caller's priority and arrival."""
        queue = self.queues.get(queue_id)
        if queue is None or not queue.available:
            return None
        call = queue.head_ready(self.calls)
        if call is None:
            return None
        return (-queue.config.priority, *call.sort_key(), queue_id)


_TARGET_PROBLEMS = {
    cmd.Refusal.TARGET_UNKNOWN: "No active {kind} {target}",
    cmd.Refusal.TARGET_SELF: "The call cannot be transferred to the operator who has it",
    cmd.Refusal.TARGET_OFFLINE: "Operator {target} is offline",
    cmd.Refusal.TARGET_BUSY: "Operator {target} is not available (busy, paused or in wrap-up)",
    cmd.Refusal.UNSUPPORTED: "An external transfer is blind only, and needs a configured context",
}
_CALL_PROBLEMS = {
    cmd.Refusal.TRANSFER_IN_PROGRESS: "A transfer of this call is under way",
    cmd.Refusal.NO_TRANSFER: "The call has no attended transfer under way",
    cmd.Refusal.CONSULT_NOT_ANSWERED: "The transfer target has not answered yet",
}


def _refused(call: CallState, refusal: cmd.Refusal) -> cmd.Refused:
    return cmd.Refused(call.id, refusal, _CALL_PROBLEMS[refusal])


def _ended(call_id: str, reason: EndReason, queue_id: str | None, wait: float) -> cmd.CallEnded:
    """A call that ends unanswered."""
    return cmd.CallEnded(call_id, CallOutcome.MISSED, reason, queue_id, None, wait, 0.0)

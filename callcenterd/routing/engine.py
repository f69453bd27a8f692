"""The routing engine: ``handle(event, now) -> commands``. Pure: no I/O, no clock, no asyncio.

It owns all routing state (waiting callers per queue, operator availability, ringing
legs, timers). Everything it decides can be replayed from its inputs: randomness comes
from a seeded generator, time from the `now` passed with each event, and timers fire
when the dispatcher sends ``Tick`` at (or after) ``next_deadline()``.

Costs: an event touches only the queues of the operator or call it concerns; a pick
scans the available members of one queue; timers live in a heap.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable
from dataclasses import dataclass

from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.commands import CallOutcome, Command, EndReason
from callcenterd.domain.queues import OperatorProfile, OverflowAction, Presence, QueueConfig
from callcenterd.domain.users import OperatorStatus
from callcenterd.routing.state import (
    CallPhase,
    CallState,
    Deadlines,
    Due,
    OperatorState,
    QueueState,
)
from callcenterd.routing.strategies import pick


@dataclass(frozen=True, slots=True)
class EngineSettings:
    auto_answer_delay: float = 0.0
    max_call_duration: float = 0.0  # 0: unlimited
    queue_timeout: float = 300.0  # max wait of queues that set none
    autopause_after: int = 3  # consecutive unanswered rings; 0: never


class RoutingEngine:
    def __init__(self, settings: EngineSettings | None = None, seed: int = 0) -> None:
        self.settings = settings or EngineSettings()
        self._rng = random.Random(seed)  # noqa: S311 - fair picks, not cryptography
        self.operators: dict[str, OperatorState] = {}
        self.queues: dict[str, QueueState] = {}
        self.calls: dict[str, CallState] = {}
        self._legs: dict[str, str] = {}  # ringing leg id -> call id
        self._talking: dict[str, str] = {}  # connected leg id -> call id
        self._deadlines = Deadlines()
        self._dirty: set[str] = set()
        self._seq = 0

    # --- the one entry point ----------------------------------------------------------------
    def handle(self, event: ev.Event, now: float) -> list[Command]:
        out: list[Command] = []
        match event:
            case ev.Tick():
                self._fire_deadlines(now, out)
            case ev.CallArrived():
                self._arrive(event, now, out)
            case ev.CallerHungUp(call_id=call_id):
                self._caller_hung_up(call_id, now, out)
            case ev.LegRinging():
                pass  # the phone rings: nothing to decide, the dispatcher records it
            case ev.LegAnswered(leg_id=leg_id):
                self._leg_answered(leg_id, now, out)
            case ev.LegFailed(leg_id=leg_id, reason=reason):
                self._leg_failed(leg_id, reason.value, now, out)
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
            case ev.SettingsChanged():
                self.settings = EngineSettings(
                    event.auto_answer_delay,
                    event.max_call_duration,
                    event.queue_timeout,
                    self.settings.autopause_after,
                )
        self._fire_deadlines(now, out)
        self._assign(now, out)
        return out

    def next_deadline(self) -> float | None:
        """When the dispatcher should send the next Tick (None: no timer pending)."""
        return self._deadlines.next_at()

    # --- read-only views (for the API's realtime figures) -------------------------------------
    def waiting_calls(self, queue_id: str) -> int:
        queue = self.queues.get(queue_id)
        return len(queue.waiting) if queue else 0

    def queue_position(self, call_id: str) -> int | None:
        call = self.calls.get(call_id)
        if call is None or call.phase is not CallPhase.WAITING:
            return None
        queue = self.queues[call.queue_id]
        for index, waiting_id in enumerate(queue.waiting, start=1):
            if waiting_id == call_id:
                return index
        return None

    # --- calls --------------------------------------------------------------------------------
    def _resolve_queue(self, event: ev.CallArrived) -> QueueState | None:
        if event.queue_hint:
            for queue in self.queues.values():
                if queue.config.asterisk_name == event.queue_hint:
                    return queue
        if event.called_number:
            for queue in self.queues.values():
                if event.called_number in queue.config.numbers:
                    return queue
        for queue in self.queues.values():
            if queue.config.is_default:
                return queue
        return None

    def _arrive(self, event: ev.CallArrived, now: float, out: list[Command]) -> None:
        if event.call_id in self.calls:
            return
        queue = self._resolve_queue(event)
        if queue is None or not queue.config.is_active:
            out.append(cmd.HangupCaller(event.call_id, EndReason.REJECTED))
            out.append(_ended(event.call_id, EndReason.REJECTED, None, None, 0.0, 0.0))
            return
        arrived = event.arrived_at if event.arrived_at is not None else now
        if not queue.config.join_empty and not self._anyone_logged_in(queue):
            out.append(cmd.HangupCaller(event.call_id, EndReason.NO_OPERATOR))
            out.append(
                _ended(
                    event.call_id, EndReason.NO_OPERATOR, queue.config.id, None, now - arrived, 0.0
                )
            )
            return
        self._seq += 1
        call = CallState(event.call_id, event.caller_number, queue.config.id, arrived, self._seq)
        self.calls[call.id] = call
        self._enqueue(call, queue, now, out, wait_from=arrived)
        if self.settings.auto_answer_delay > 0 and event.arrived_at is None:
            self._deadlines.add(now + self.settings.auto_answer_delay, Due.ANSWER, call.id)
        else:
            self._answer(call, queue, out)

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
        call.queue_id = queue.config.id
        queue.waiting[call.id] = None
        queue.push_ready(call)
        self._dirty.add(queue.config.id)
        max_wait = queue.config.max_wait_time or self.settings.queue_timeout
        # A re-adopted call keeps the wait it already had; an overflowed one starts afresh.
        self._deadlines.add(max(now, wait_from + max_wait), Due.MAX_WAIT, call.id, call.seq)
        out.append(cmd.CallQueued(call.id, queue.config.id, len(queue.waiting), moved_from))

    def _answer(self, call: CallState, queue: QueueState, out: list[Command]) -> None:
        if call.answered or call.phase is not CallPhase.WAITING:
            return
        call.answered = True
        out.append(cmd.AnswerCaller(call.id))
        out.append(cmd.HoldCaller(call.id, queue.config.music_class))

    def _anyone_logged_in(self, queue: QueueState) -> bool:
        return any(self.operators[op].is_logged_in() for op in queue.members)

    def _leave_queue(self, call: CallState, now: float, out: list[Command], outcome: str) -> None:
        """Take a waiting call out of its queue, cancelling whatever rings for it."""
        self.queues[call.queue_id].waiting.pop(call.id, None)
        for leg_id in list(call.legs):
            out.append(cmd.CancelLeg(call.id, leg_id))
            self._drop_leg(call, leg_id, now, out, outcome)

    def _finish(self, call: CallState) -> None:
        self.calls.pop(call.id, None)
        if call.connected_leg is not None:
            self._talking.pop(call.connected_leg, None)

    def _caller_hung_up(self, call_id: str, now: float, out: list[Command]) -> None:
        call = self.calls.get(call_id)
        if call is None:
            return
        if call.phase is CallPhase.WAITING:
            self._leave_queue(call, now, out, "cancelled")
            out.append(
                _ended(
                    call.id, EndReason.ABANDONED, call.queue_id, None, now - call.arrived_at, 0.0
                )
            )
            self._finish(call)
            return
        assert call.connected_leg is not None
        out.append(cmd.CancelLeg(call.id, call.connected_leg))
        self._end_connected(call, EndReason.CALLER_HANGUP, now, out)

    def _end_connected(
        self, call: CallState, reason: EndReason, now: float, out: list[Command]
    ) -> None:
        operator_id = call.operator_id
        assert operator_id is not None
        out.append(
            cmd.CallEnded(
                call.id,
                CallOutcome.COMPLETED,
                reason,
                call.queue_id,
                operator_id,
                call.connected_at - call.arrived_at,
                now - call.connected_at,
            )
        )
        self._finish(call)
        operator = self.operators.get(operator_id)
        if operator is None:
            return
        operator.talking.discard(call.id)
        queue = self.queues.get(call.queue_id)
        if queue is not None:
            stats = queue.member_stats(operator_id)
            stats.last_call_end = now
            stats.calls_completed += 1
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
            operator = self.operators[operator_id]
            leg_id = call.next_leg_id()
            call.legs[leg_id] = operator_id
            call.tried.add(operator_id)
            self._legs[leg_id] = call.id
            operator.ringing.add(leg_id)
            queue.rr_last = operator_id
            out.append(
                cmd.RingOperator(
                    call.id,
                    leg_id,
                    operator_id,
                    operator.profile.extension,
                    call.caller_number,
                    timeout,
                )
            )
            self._deadlines.add(now + timeout, Due.RING_TIMEOUT, leg_id)
            self._refresh(operator, now, out)

    def _drop_leg(
        self, call: CallState, leg_id: str, now: float, out: list[Command], outcome: str
    ) -> None:
        operator_id = call.legs.pop(leg_id)
        self._legs.pop(leg_id, None)
        out.append(cmd.LegEnded(call.id, leg_id, operator_id, outcome))
        operator = self.operators.get(operator_id)
        if operator is None:
            return
        operator.ringing.discard(leg_id)
        if outcome == "no_answer":
            operator.misses += 1
            limit = self.settings.autopause_after
            if limit and operator.misses >= limit and operator.profile.presence is Presence.ONLINE:
                operator.misses = 0
                self._set_presence(operator_id, Presence.PAUSED, "no_answer", now, out)
                return
        self._refresh(operator, now, out)

    def _leg_failed(self, leg_id: str, outcome: str, now: float, out: list[Command]) -> None:
        call_id = self._legs.get(leg_id)
        call = self.calls.get(call_id) if call_id else None
        if call is None or leg_id not in call.legs:
            return
        self._drop_leg(call, leg_id, now, out, outcome)
        if call.legs:
            return  # others still ring (ringall)
        queue = self.queues[call.queue_id]
        untried = any(op not in call.tried for op in queue.available)
        if untried:
            queue.push_ready(call)  # next operator at once
            self._dirty.add(queue.config.id)
        else:
            # Everyone available was tried: wait, then start a new round.
            call.tried.clear()
            call.retry_pending = True
            self._deadlines.add(now + queue.config.retry_delay, Due.RETRY, call.id)

    def _leg_answered(self, leg_id: str, now: float, out: list[Command]) -> None:
        call_id = self._legs.get(leg_id)
        call = self.calls.get(call_id) if call_id else None
        if call is None or leg_id not in call.legs or call.phase is not CallPhase.WAITING:
            # Answered after someone else won, or after the caller left: hang it up.
            if call_id is not None:
                out.append(cmd.CancelLeg(call_id, leg_id))
                if call is not None and leg_id in call.legs:
                    self._drop_leg(call, leg_id, now, out, "lost_race")
            return
        operator_id = call.legs.pop(leg_id)
        self._legs.pop(leg_id, None)
        for other in list(call.legs):
            out.append(cmd.CancelLeg(call.id, other))
            self._drop_leg(call, other, now, out, "cancelled")
        self.queues[call.queue_id].waiting.pop(call.id, None)
        call.phase = CallPhase.CONNECTED
        call.answered = True
        call.connected_leg = leg_id
        self._talking[leg_id] = call.id
        call.operator_id = operator_id
        call.connected_at = now
        operator = self.operators[operator_id]
        operator.ringing.discard(leg_id)
        operator.talking.add(call.id)
        operator.misses = 0
        out.append(cmd.ConnectCall(call.id, leg_id, operator_id))
        out.append(cmd.CallAnswered(call.id, leg_id, operator_id, now - call.arrived_at))
        if self.settings.max_call_duration > 0:
            self._deadlines.add(now + self.settings.max_call_duration, Due.MAX_DURATION, call.id)
        self._refresh(operator, now, out)

    def _leg_hung_up(self, leg_id: str, now: float, out: list[Command]) -> None:
        call_id = self._talking.get(leg_id)
        if call_id is not None:
            call = self.calls[call_id]
            out.append(cmd.HangupCaller(call.id, EndReason.OPERATOR_HANGUP))
            self._end_connected(call, EndReason.OPERATOR_HANGUP, now, out)
            return
        # A ringing leg that went away before answering.
        self._leg_failed(leg_id, "no_answer", now, out)

    # --- timers -------------------------------------------------------------------------------
    def _fire_deadlines(self, now: float, out: list[Command]) -> None:
        while (deadline := self._deadlines.pop_due(now)) is not None:
            ref = deadline.ref
            match deadline.due:
                case Due.ANSWER:
                    call = self.calls.get(ref)
                    if call is not None:
                        self._answer(call, self.queues[call.queue_id], out)
                case Due.RING_TIMEOUT:
                    call_id = self._legs.get(ref)
                    if call_id is not None:
                        out.append(cmd.CancelLeg(call_id, ref))
                        self._leg_failed(ref, "no_answer", now, out)
                case Due.RETRY:
                    call = self.calls.get(ref)
                    if call is not None and call.retry_pending:
                        call.retry_pending = False
                        self.queues[call.queue_id].push_ready(call)
                        self._dirty.add(call.queue_id)
                case Due.MAX_WAIT:
                    call = self.calls.get(ref)
                    if (
                        call is not None
                        and call.phase is CallPhase.WAITING
                        and call.seq == deadline.token
                    ):
                        self._overflow(call, now, out)
                case Due.WRAPUP_END:
                    operator = self.operators.get(ref)
                    if operator is not None:
                        self._refresh(operator, now, out)
                case Due.MAX_DURATION:
                    call = self.calls.get(ref)
                    if call is not None and call.phase is CallPhase.CONNECTED:
                        assert call.connected_leg is not None
                        out.append(cmd.CancelLeg(call.id, call.connected_leg))
                        out.append(cmd.HangupCaller(call.id, EndReason.MAX_DURATION))
                        self._end_connected(call, EndReason.MAX_DURATION, now, out)

    def _overflow(self, call: CallState, now: float, out: list[Command]) -> None:
        queue = self.queues[call.queue_id]
        config = queue.config
        self._leave_queue(call, now, out, "cancelled")
        target = self.queues.get(config.overflow_queue_id or "")
        if (
            config.overflow_action is OverflowAction.QUEUE
            and target is not None
            and target is not queue
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
        out.append(_ended(call.id, EndReason.TIMEOUT, config.id, None, wait, 0.0))
        self._finish(call)

    # --- operators ----------------------------------------------------------------------------
    def _refresh(self, operator: OperatorState, now: float, out: list[Command]) -> None:
        """Re-derive availability and shown status; publish changes to queues and facts."""
        available = operator.is_available(now)
        if available != operator.available:
            operator.available = available
            for queue_id in operator.queues:
                queue = self.queues[queue_id]
                if available:
                    queue.available[operator.id] = None
                    self._dirty.add(queue_id)
                else:
                    queue.available.pop(operator.id, None)
        status, reason = operator.status(now)
        if status != operator.shown:
            operator.shown = status
            out.append(cmd.OperatorStatusChanged(operator.id, status, reason))
        if status is OperatorStatus.OFFLINE:
            operator.logged_out = True
        elif available and operator.logged_out:
            operator.logged_out = False
            out.append(cmd.OperatorLoggedIn(operator.id, operator.profile.extension))

    def _upsert_operator(self, profile: OperatorProfile, now: float, out: list[Command]) -> None:
        operator = self.operators.get(profile.id)
        if operator is None:
            operator = self.operators[profile.id] = OperatorState(profile)
        else:
            operator.profile = profile
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
            queue.available.pop(operator_id, None)
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
        profile = operator.profile
        operator.profile = OperatorProfile(
            profile.id,
            profile.extension,
            profile.skills,
            profile.max_concurrent_calls,
            presence,
            reason if presence is Presence.PAUSED else None,
            profile.name,
        )
        if presence is Presence.ONLINE:
            operator.misses = 0
        if presence is Presence.OFFLINE:
            self._cancel_ringing(operator, "cancelled", now, out)
        self._refresh(operator, now, out)

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
                self._leg_failed(leg_id, outcome, now, out)

    # --- queues -------------------------------------------------------------------------------
    def _eligible(self, config: QueueConfig) -> dict[str, int]:
        """Members having the queue's skills; a skills-only queue takes every such operator."""
        needed = config.required_skills
        if config.members:
            return {
                m.operator_id: m.penalty
                for m in config.members
                if m.operator_id in self.operators
                and needed <= self.operators[m.operator_id].profile.skills
            }
        if needed:
            return {op_id: 0 for op_id, op in self.operators.items() if needed <= op.profile.skills}
        return {}

    def _index_operator(self, operator: OperatorState) -> None:
        """Recompute which queues an operator serves after their profile changed."""
        for queue in self.queues.values():
            self._index_member(queue, operator)

    def _index_member(self, queue: QueueState, operator: OperatorState) -> None:
        config = queue.config
        penalty: int | None = None
        skilled = config.required_skills <= operator.profile.skills
        if config.members:
            for member in config.members:
                if member.operator_id == operator.id and skilled:
                    penalty = member.penalty
        elif config.required_skills and skilled:
            penalty = 0
        queue_id = config.id
        if penalty is None:
            queue.members.pop(operator.id, None)
            queue.available.pop(operator.id, None)
            operator.queues.pop(queue_id, None)
            return
        if operator.id not in queue.position:
            queue.position[operator.id] = len(queue.position)
        queue.members[operator.id] = penalty
        operator.queues[queue_id] = penalty
        if operator.available:
            queue.available[operator.id] = None
            self._dirty.add(queue_id)

    def _upsert_queue(self, config: QueueConfig, now: float, out: list[Command]) -> None:
        queue = self.queues.get(config.id)
        if queue is None:
            queue = self.queues[config.id] = QueueState(config)
        queue.config = config
        for operator_id in list(queue.members):
            self.operators[operator_id].queues.pop(config.id, None)
        queue.members = self._eligible(config)
        order = [m.operator_id for m in config.members] or list(queue.members)
        queue.position = {op: index for index, op in enumerate(order)}
        queue.available = {}
        for operator_id, penalty in queue.members.items():
            operator = self.operators[operator_id]
            operator.queues[config.id] = penalty
            if operator.available:
                queue.available[operator_id] = None
        self._dirty.add(config.id)

    def _remove_queue(self, queue_id: str, now: float, out: list[Command]) -> None:
        queue = self.queues.get(queue_id)
        if queue is None:
            return
        for operator_id in queue.members:
            self.operators[operator_id].queues.pop(queue_id, None)
        for call_id in list(queue.waiting):
            call = self.calls[call_id]
            self._leave_queue(call, now, out, "cancelled")
            out.append(cmd.HangupCaller(call_id, EndReason.REJECTED))
            out.append(
                _ended(call_id, EndReason.REJECTED, queue_id, None, now - call.arrived_at, 0.0)
            )
            self._finish(call)
        del self.queues[queue_id]

    # --- assignment ---------------------------------------------------------------------------
    def _assign(self, now: float, out: list[Command]) -> None:
        """Ring operators for ready callers: higher queue priority first, then FIFO."""
        while self._dirty:
            dirty, self._dirty = self._dirty, set()
            self._assign_round(dirty, now, out)

    def _assign_round(self, dirty: set[str], now: float, out: list[Command]) -> None:
        candidates: list[tuple[int, float, int, str]] = []
        for queue_id in dirty:
            entry = self._head_entry(queue_id)
            if entry is not None:
                heapq.heappush(candidates, entry)
        while candidates:
            _, _, _, queue_id = heapq.heappop(candidates)
            queue = self.queues.get(queue_id)
            if queue is None:
                continue
            call = queue.head_ready(self.calls)
            if call is None or not queue.available:
                continue
            fresh = [op for op in queue.available if op not in call.tried]
            if not fresh:
                # All available members were tried this round: start a new one.
                call.tried.clear()
                fresh = list(queue.available)
            self._ring(call, queue, pick(queue, fresh, self._rng), now, out)
            entry = self._head_entry(queue_id)
            if entry is not None:
                heapq.heappush(candidates, entry)
            # Ringing made operators unavailable; queues sharing them are already in the heap
            # and re-check availability when popped.

    def _head_entry(self, queue_id: str) -> tuple[int, float, int, str] | None:
        queue = self.queues.get(queue_id)
        if queue is None or not queue.available:
            return None
        call = queue.head_ready(self.calls)
        if call is None:
            return None
        return (-queue.config.priority, call.arrived_at, call.seq, queue_id)


def _ended(
    call_id: str,
    reason: EndReason,
    queue_id: str | None,
    operator_id: str | None,
    wait: float,
    talk: float,
) -> cmd.CallEnded:
    return cmd.CallEnded(call_id, CallOutcome.MISSED, reason, queue_id, operator_id, wait, talk)

"""Callbacks: a waiting caller who presses 1 hangs up and keeps their place. Pure.

A callback is a waiting entry like any caller's (same queue, the original arrival and
priority, so the same place in line) but without a channel. When its turn comes the engine
rings an operator with the queue's usual strategy; once the operator answers it dials the
caller back (`DialCallback`) and bridges the two when the caller answers. A caller who does
not answer (busy, no answer, unreachable) is dialed again `callback_retry_delay` seconds
later, still in their place, up to `callback_max_attempts` dials; then the callback has
failed. An operator who hangs up before the caller answers costs the caller nothing: the
entry is back in line at once. One callback per number and queue: asking again confirms the
pending one.

These functions are the engine's (routing/engine.py calls them with itself): they read and
change its state as its own methods do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.commands import CallOutcome, Command, EndReason
from callcenterd.domain.queues import QueueConfig
from callcenterd.routing.state import CallbackEntry, CallPhase, CallState, Due

if TYPE_CHECKING:
    from callcenterd.routing.engine import RoutingEngine

ACCEPT_DIGIT = "1"
# An offer due while an operator is being rung for the caller waits this long (the answer
# would cut it short).
OFFER_DEFERRED = 5.0


def offered_in(engine: RoutingEngine, config: QueueConfig) -> bool:
    """Whether the queue offers callbacks: its own setting, else the system's."""
    if config.callback_enabled is None:
        return engine.settings.callback_enabled
    return config.callback_enabled


def arm_offer(
    engine: RoutingEngine, call: CallState, config: QueueConfig, now: float, wait_from: float
) -> None:
    """A caller joins a queue that offers callbacks: the offer is due `callback_offer_after`
    seconds into the wait (read again when due: settings may have changed meanwhile)."""
    if (
        call.callback is None
        and not call.callback_offered
        and config.callback_offer_after > 0
        and offered_in(engine, config)
    ):
        at = max(now, wait_from + config.callback_offer_after)
        engine._deadlines.add(at, Due.CALLBACK_OFFER, call.id, call.seq)


def offer(engine: RoutingEngine, call: CallState, now: float, out: list[Command]) -> None:
    config = engine.queues[call.queue_id].config
    if call.callback_offered or not offered_in(engine, config):
        return
    if call.legs or not call.answered:
        engine._deadlines.add(now + OFFER_DEFERRED, Due.CALLBACK_OFFER, call.id, call.seq)
        return
    call.callback_offered = True
    out.append(cmd.OfferCallback(call.id))


def pending_for(engine: RoutingEngine, queue_id: str, number: str) -> CallState | None:
    """The callback still to be served for this number in this queue, if any."""
    call_id = engine._callbacks.get((queue_id, number))
    entry = engine.calls.get(call_id) if call_id is not None else None
    return entry if entry is not None and entry.callback is not None else None


def digit(engine: RoutingEngine, event: ev.CallerDigit, now: float, out: list[Command]) -> None:
    """A key from a waiting caller: 1, after the offer, books the callback (or confirms the
    one already pending) and the caller's call ends (reason `callback`)."""
    call = engine.calls.get(event.call_id)
    if (
        call is None
        or call.phase is not CallPhase.WAITING
        or call.callback is not None
        or event.digit != ACCEPT_DIGIT
        or not call.callback_offered
        or not event.callback_call_id
    ):
        return
    queue_id = call.queue_id
    engine._leave_queue(call, now, out, "cancelled")
    out.append(cmd.ConfirmCallback(call.id))
    existing = pending_for(engine, queue_id, call.caller_number)
    if existing is not None:
        assert existing.callback is not None
        out.append(_requested(existing, existing.callback.id, call.id, existing=True))
    else:
        entry = CallState(
            event.callback_call_id, call.caller_number, queue_id, call.arrived_at, call.seq
        )
        entry.priority = call.priority
        entry.callback = CallbackEntry(event.callback_id)
        out.append(_requested(entry, event.callback_id, call.id, existing=False))
        _book(engine, entry, 0.0, now, out)
    out.append(
        cmd.CallEnded(
            call.id, CallOutcome.MISSED, EndReason.CALLBACK, queue_id, None,
            now - call.arrived_at, 0.0,
        )
    )  # fmt: skip
    engine._finish(call)


def _requested(
    entry: CallState, callback_id: str, origin_call_id: str, *, existing: bool
) -> cmd.CallbackChanged:
    return cmd.CallbackChanged(
        callback_id,
        entry.id,
        "requested",
        origin_call_id=origin_call_id,
        queue_id=entry.queue_id,
        number=entry.caller_number,
        place_at=entry.arrived_at,
        priority=entry.priority,
        existing=existing,
    )


def add(engine: RoutingEngine, event: ev.CallbackAdded, now: float, out: list[Command]) -> None:
    """A callback booked through the API or re-adopted at start-up."""
    if (
        event.call_id in engine.calls
        or event.queue_id not in engine.queues
        or pending_for(engine, event.queue_id, event.number) is not None
    ):
        return
    engine._seq += 1
    entry = CallState(event.call_id, event.number, event.queue_id, event.place_at, engine._seq)
    entry.priority = event.priority
    entry.leg_count = event.legs_used
    entry.callback = CallbackEntry(event.callback_id, event.attempts)
    _book(engine, entry, event.not_before, now, out)


def _book(
    engine: RoutingEngine, entry: CallState, not_before: float, now: float, out: list[Command]
) -> None:
    """Put a callback's entry in line by its place: no channel to answer, no max wait."""
    queue = engine.queues[entry.queue_id]
    entry.answered = True  # nothing to answer: the caller is dialed when an operator is ready
    engine.calls[entry.id] = entry
    engine._callbacks[(entry.queue_id, entry.caller_number)] = entry.id
    queue.waiting[entry.id] = None
    out.append(cmd.CallQueued(entry.id, entry.queue_id, engine._position(queue, entry)))
    if not_before > now:
        _hold_until(engine, entry, not_before, out)
    else:
        queue.push_ready(entry)
        engine._dirty.add(entry.queue_id)


def _hold_until(engine: RoutingEngine, entry: CallState, at: float, out: list[Command]) -> None:
    """Not rung before `at` (the retry timer): the place in line is kept meanwhile."""
    assert entry.callback is not None
    entry.tried.clear()
    entry.retry_pending = True
    entry.retry_at = at
    engine._deadlines.add(at, Due.RETRY, entry.id)
    out.append(
        cmd.CallbackChanged(
            entry.callback.id, entry.id, "scheduled", entry.callback.attempts, at=at
        )
    )


def cancel(engine: RoutingEngine, call_id: str, now: float, out: list[Command]) -> None:
    """Cancelled while still waiting its turn (a callback being dialed is not cancelled)."""
    entry = engine.calls.get(call_id)
    if entry is None or entry.callback is None or entry.phase is not CallPhase.WAITING:
        return
    engine._leave_queue(entry, now, out, "cancelled")
    _close(engine, entry, EndReason.CALLBACK_CANCELLED, now, out)


def reschedule(
    engine: RoutingEngine, call_id: str, not_before: float, now: float, out: list[Command]
) -> None:
    """Not before `not_before`, keeping its place (anyone ringing for it now is cancelled)."""
    entry = engine.calls.get(call_id)
    if entry is None or entry.callback is None or entry.phase is not CallPhase.WAITING:
        return
    for leg_id in list(entry.legs):
        out.append(cmd.CancelLeg(entry.id, leg_id))
        engine._drop_leg(entry, leg_id, now, out, "cancelled")
    if not_before > now:
        _hold_until(engine, entry, not_before, out)
        return
    entry.retry_pending = False
    entry.tried.clear()
    engine.queues[entry.queue_id].push_ready(entry)
    engine._dirty.add(entry.queue_id)
    out.append(
        cmd.CallbackChanged(
            entry.callback.id, entry.id, "scheduled", entry.callback.attempts, at=now
        )
    )


def _close(
    engine: RoutingEngine, entry: CallState, reason: EndReason, now: float, out: list[Command]
) -> None:
    engine._callbacks.pop((entry.queue_id, entry.caller_number), None)
    out.append(
        cmd.CallEnded(
            entry.id, CallOutcome.MISSED, reason, entry.queue_id, None,
            now - entry.arrived_at, 0.0,
        )
    )  # fmt: skip
    engine._finish(entry)


# --- the operator answered: dial the caller back ----------------------------------------------
def operator_ready(
    engine: RoutingEngine, entry: CallState, leg_id: str, now: float, out: list[Command]
) -> None:
    """Called by the engine once an operator answered for a callback's entry (the entry is
    connected to that leg, the operator busy with it)."""
    callback = entry.callback
    assert callback is not None and entry.operator_id is not None
    callback.attempts += 1
    dial_leg = entry.next_leg_id()
    callback.dial_leg = dial_leg
    engine._dial_backs[dial_leg] = entry.id
    engine._dial_backs[leg_id] = entry.id
    out.append(
        cmd.DialCallback(
            entry.id,
            leg_id,
            entry.operator_id,
            dial_leg,
            entry.caller_number,
            entry.queue_id,
            next(iter(engine.queues[entry.queue_id].config.numbers), None),
            engine.settings.callback_ring_timeout,
        )
    )
    out.append(
        cmd.CallbackChanged(
            callback.id, entry.id, "dialing", callback.attempts, operator_id=entry.operator_id
        )
    )
    engine._refresh(engine.operators[entry.operator_id], now, out)


def leg_event(
    engine: RoutingEngine,
    event: ev.LegAnswered | ev.LegFailed | ev.LegHungUp,
    now: float,
    out: list[Command],
) -> None:
    """An event of a callback's dial, or of its operator's leg while the caller is dialed."""
    call_id = engine._dial_backs[event.leg_id]
    entry = engine.calls.get(call_id)
    callback = entry.callback if entry is not None else None
    if entry is None or callback is None:
        engine._dial_backs.pop(event.leg_id, None)  # the call is over: a late event
        return
    if event.leg_id != callback.dial_leg:  # the operator's leg
        if not isinstance(event, ev.LegAnswered):
            assert callback.dial_leg is not None
            out.append(cmd.CancelLeg(entry.id, callback.dial_leg))
            callback.attempts -= 1  # not the caller's fault
            _back_in_line(engine, entry, now, out)
            engine.queues[entry.queue_id].push_ready(entry)
            engine._dirty.add(entry.queue_id)
        return
    match event:
        case ev.LegAnswered():
            _bridge(engine, entry, now, out)
        case ev.LegHungUp() if callback.bridged:
            engine._dial_backs.pop(event.leg_id, None)
            engine._caller_hung_up(entry.id, now, out)
        case ev.LegFailed(reason=reason):
            _not_reached(engine, entry, reason.value, now, out)
        case ev.LegHungUp():
            _not_reached(engine, entry, ev.LegFailure.NO_ANSWER.value, now, out)


def _bridge(engine: RoutingEngine, entry: CallState, now: float, out: list[Command]) -> None:
    callback = entry.callback
    assert callback is not None and entry.connected_leg is not None
    assert entry.operator_id is not None
    callback.bridged = True
    # The conversation starts now: the wait ran until the bridge, and the talk from here.
    entry.connected_at = entry.segment_at = now
    engine._dial_backs.pop(entry.connected_leg, None)  # its hang-up is an ordinary one now
    engine._callbacks.pop((entry.queue_id, entry.caller_number), None)
    out.append(cmd.ConnectCall(entry.id, entry.connected_leg, entry.operator_id))
    out.append(
        cmd.CallAnswered(entry.id, entry.connected_leg, entry.operator_id, now - entry.arrived_at)
    )
    out.append(
        cmd.CallbackChanged(
            callback.id, entry.id, "completed", callback.attempts, operator_id=entry.operator_id
        )
    )


def _not_reached(
    engine: RoutingEngine, entry: CallState, reason: str, now: float, out: list[Command]
) -> None:
    """The caller did not answer the dial: again later in their place, or failed."""
    callback = entry.callback
    assert callback is not None
    _back_in_line(engine, entry, now, out)
    if callback.attempts >= engine.settings.callback_max_attempts:
        engine.queues[entry.queue_id].waiting.pop(entry.id, None)
        out.append(
            cmd.CallbackChanged(callback.id, entry.id, "failed", callback.attempts, reason=reason)
        )
        _close(engine, entry, EndReason.CALLBACK_FAILED, now, out)
        return
    _hold_until(engine, entry, now + engine.settings.callback_retry_delay, out)


def _back_in_line(engine: RoutingEngine, entry: CallState, now: float, out: list[Command]) -> None:
    """Undo the operator's answer: their leg is hung up, they are free, the entry waits."""
    callback = entry.callback
    operator_leg, operator_id = entry.connected_leg, entry.operator_id
    assert callback is not None and operator_leg is not None and operator_id is not None
    for leg_id in (callback.dial_leg, operator_leg):
        if leg_id is not None:
            engine._dial_backs.pop(leg_id, None)
    callback.dial_leg = None
    engine._talking.pop(operator_leg, None)
    out.append(cmd.CancelLeg(entry.id, operator_leg))
    out.append(cmd.LegEnded(entry.id, operator_leg, operator_id, "cancelled"))
    entry.phase = CallPhase.WAITING
    entry.connected_leg = None
    entry.operator_id = None
    entry.tried.clear()
    engine.queues[entry.queue_id].waiting[entry.id] = None
    operator = engine.operators.get(operator_id)
    if operator is not None:
        operator.talking.discard(entry.id)
        engine._refresh(operator, now, out)

"""Callbacks: the engine's steps stored and published, the API's changes, the start-up
re-adoption.

A callback has its own call record (routed_by `callback`), opened when it is booked and
closed by the engine's `CallEnded` (completed after the conversation; missed with reason
`callback_failed` or `callback_cancelled`). Its steps go on that record's timeline
(`callback_requested`, `callback_dialing`, ...), and on the lane of that call, so the record
exists before the engine's facts about it. The call the caller pressed 1 in ends with reason
`callback` and a `callback_requested` entry naming the callback.

Who may do what: admins and managers every callback; a supervisor those of queues one of
their group's operators is a member of (others answer 404, and booking one 403); an
operator reads the callbacks they served.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog

from callcenterd.analytics.periods import local_midnight
from callcenterd.contract.callbacks import CallbackCreate, CallbackListQuery, CallbackReschedule
from callcenterd.contract.validation import field_error
from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.domain.messages import OutgoingMessage
from callcenterd.domain.users import Role
from callcenterd.errors import Conflict, NotFound, PermissionDenied
from callcenterd.events.bus import EventBus
from callcenterd.events.payloads import CallbackEvent
from callcenterd.notify.sms_notices import CallbackNotice, SmsNotices
from callcenterd.security import Clock, Principal
from callcenterd.services.call_records import CallRecorder
from callcenterd.services.context import audit
from callcenterd.store.call_queries import CallQueries
from callcenterd.store.callbacks import CallbackFilter, CallbackStore
from callcenterd.store.callbacks import StoredCallback as StoredCallback  # re-exported for api/
from callcenterd.store.calls import CallEnd
from callcenterd.store.db import Database
from callcenterd.store.operators import OperatorDirectory
from callcenterd.store.outbox import enqueue_in

log = structlog.get_logger(__name__)

CALLBACK_ROUTED_BY = "callback"
SAME_TIME = timedelta(milliseconds=1)
Submit = Callable[[ev.Event], Awaitable[None]]
_STATUS_OF_STEP = {
    "requested": "pending",
    "scheduled": "pending",
    "dialing": "dialing",
    "completed": "completed",
    "failed": "failed",
}


def _stamp(at: float | None) -> datetime | None:
    """An engine time (epoch seconds) as a datetime."""
    return None if at is None else datetime.fromtimestamp(at, UTC)


def _notice(callback: StoredCallback, scheduled_at: datetime | None) -> CallbackNotice:
    return CallbackNotice(callback.id, callback.queue_id, callback.number, scheduled_at)


class CallbackFacts:
    """The engine's `CallbackChanged` facts: stored, then published, in the call's order.

    The caller's SMS about the callback (`notices`) are queued in the outbox in the same
    transaction as the step that causes them: booked (confirmation, reminder), moved by a
    person (the new time, its reminder; the old reminder withdrawn), dialed or over (a
    reminder still queued is withdrawn)."""

    def __init__(
        self,
        store: CallbackStore,
        records: CallRecorder,
        bus: EventBus,
        notices: SmsNotices | None = None,
    ) -> None:
        self._store = store
        self._records = records
        self._bus = bus
        self._notices = notices

    def record(self, fact: cmd.CallbackChanged, at: datetime) -> asyncio.Task[None]:
        if fact.event == "requested":
            origin = fact.origin_call_id
            if origin is not None:  # on the origin's timeline, before its end is written
                data = {"callback_id": fact.callback_id, "existing": fact.existing}
                self._records.later(
                    origin, lambda: self._records.noted(origin, at, "callback_requested", data)
                )
            if fact.existing:
                return self._records.later(fact.call_id, lambda: self._existing(fact, at))
            return self._records.later(fact.call_id, lambda: self._booked(fact, at))
        return self._records.later(fact.call_id, lambda: self._step(fact, at))

    async def _booked(self, fact: cmd.CallbackChanged, at: datetime) -> None:
        """A caller pressed 1: the callback and its call record are written."""
        assert fact.queue_id is not None and fact.number is not None
        place_at = _stamp(fact.place_at) or at
        callback = {
            "id": fact.callback_id,
            "queue_id": fact.queue_id,
            "number": fact.number,
            "status": "pending",
            "origin_call_id": fact.origin_call_id,
            "priority": fact.priority,
            "place_at": to_iso(place_at),
            "requested_by": "caller",
        }
        await self.open(fact.call_id, callback, at)

    async def open(self, call_id: str, callback: dict[str, Any], at: datetime) -> None:
        """The callback's call record, then the callback naming it, then `callback_requested`."""
        await self._records.started(
            call_id,
            at,
            channel_id="",
            caller_number=callback["number"],
            called_number=None,
            routed_by=CALLBACK_ROUTED_BY,
            priority=callback["priority"],
        )
        async with self._store.transaction() as conn:
            stamp = to_iso(at)
            await self._store.insert(
                conn, {**callback, "call_id": call_id, "created_at": stamp, "updated_at": stamp}
            )
            if self._notices is not None:
                scheduled = callback.get("scheduled_at")
                notice = CallbackNotice(
                    callback["id"],
                    callback["queue_id"],
                    callback["number"],
                    from_iso(scheduled) if scheduled else None,
                )
                await enqueue_in(conn, self._notices.callback_booked(notice, at), at)
        data = {"callback_id": callback["id"], "origin_call_id": callback.get("origin_call_id")}
        await self._records.noted(call_id, at, "callback_requested", data)
        stored = await self._store.get(callback["id"])
        if stored is not None:
            self.publish("requested", stored, at)

    async def _sms_of_step(
        self, fact: cmd.CallbackChanged, scheduled_at: str | None, at: datetime
    ) -> tuple[list[OutgoingMessage], str | None]:
        """(messages to queue, reminder keys to withdraw) for a step of the callback."""
        if self._notices is None:
            return [], None
        withdraw = SmsNotices.reminder_prefix(fact.callback_id)
        if fact.event != "scheduled":
            return [], withdraw  # dialing or over: a reminder still queued is stale
        before = await self._store.get(fact.callback_id)
        # A person moved it: it was waiting (not being dialed: that is a retry after an
        # unanswered dial) and its time changed (a re-adopted callback keeps its own).
        if before is None or before.status != "pending" or scheduled_at is None:
            return [], None
        moved_to = from_iso(scheduled_at)
        # The engine's times are float seconds: the same time may differ by a microsecond.
        if before.scheduled_at is not None and abs(before.scheduled_at - moved_to) < SAME_TIME:
            return [], None
        notice = _notice(before, moved_to)
        return self._notices.callback_rescheduled(notice, at), withdraw

    def withdraw_reminders(self, callback_id: str) -> str | None:
        """The key prefix of the callback's reminders, to withdraw (None: no SMS here)."""
        return None if self._notices is None else SmsNotices.reminder_prefix(callback_id)

    async def _existing(self, fact: cmd.CallbackChanged, at: datetime) -> None:
        stored = await self._store.get(fact.callback_id)
        if stored is not None:
            self.publish("requested", stored, at, origin_call_id=fact.origin_call_id)

    async def _step(self, fact: cmd.CallbackChanged, at: datetime) -> None:
        columns: dict[str, Any] = {"status": _STATUS_OF_STEP[fact.event], "attempts": fact.attempts}
        if fact.operator_id is not None:
            columns["operator_id"] = fact.operator_id
        if fact.event == "scheduled":
            scheduled = _stamp(fact.at)
            columns["scheduled_at"] = to_iso(scheduled) if scheduled else None
        if fact.reason is not None:
            columns["reason"] = fact.reason
        messages, withdraw = await self._sms_of_step(fact, columns.get("scheduled_at"), at)
        await self._store.change(
            fact.callback_id, at, messages=messages, withdraw=withdraw, **columns
        )
        data: dict[str, Any] = {"callback_id": fact.callback_id, "attempts": fact.attempts}
        if fact.reason is not None:
            data["reason"] = fact.reason
        if fact.at is not None:
            data["scheduled_at"] = columns.get("scheduled_at")
        await self._records.noted(fact.call_id, at, f"callback_{fact.event}", data)
        stored = await self._store.get(fact.callback_id)
        if stored is not None:
            self.publish(fact.event, stored, at)

    def publish(
        self,
        step: str,
        callback: StoredCallback,
        at: datetime,
        *,
        origin_call_id: str | None = None,
    ) -> None:
        event = CallbackEvent(
            step=step,
            callback_id=callback.id,
            call_id=callback.call_id,
            queue_id=callback.queue_id,
            number=callback.number,
            status=callback.status,
            attempts=callback.attempts,
            operator_id=callback.operator_id,
            scheduled_at=to_iso(callback.scheduled_at) if callback.scheduled_at else None,
            origin_call_id=origin_call_id or callback.origin_call_id,
            reason=callback.reason,
            timestamp=to_iso(at),
        )
        self._bus.publish(event.type, event.data())


class CallbackService:
    def __init__(
        self,
        db: Database,
        store: CallbackStore,
        facts: CallbackFacts,
        calls: CallQueries,
        directory: OperatorDirectory,
        records: CallRecorder,
        submit: Submit,
        clock: Clock,
        tz: Any,
    ) -> None:
        self._db = db
        self._store = store
        self._facts = facts
        self._calls = calls
        self._directory = directory
        self._records = records
        self._submit = submit
        self._clock = clock
        self._tz = tz

    # --- start-up -----------------------------------------------------------------------------
    async def adopt_open(self) -> int:
        """Give the engine back every callback still to serve, with its place and time."""
        adopted = 0
        now = self._clock()
        for callback in await self._store.open_callbacks():
            if callback.call_id is None:
                continue
            if callback.status == "dialing":  # the daemon stopped mid-dial: it waits again
                await self._store.change(callback.id, now, status="pending")
                call_id = callback.call_id
                data = {"callback_id": callback.id, "status": "dialing"}
                await self._records.noted(call_id, now, "reconciled", data)
            await self._submit(self._added(callback, await self._store.events_of(callback.call_id)))
            adopted += 1
        # A callback conversation cut by the stop cannot be followed: closed as lost (its
        # channels, legs of ours, are hung up by reconciliation when ARI connects).
        for call_id, status in await self._store.orphaned_calls():
            talked = "completed" if status == "answered" else "missed"
            end = CallEnd(talked, "lost", 0, reconciled=True)
            await self._records.ended(call_id, now, end)
        log.info("callbacks_adopted", count=adopted)
        return adopted

    @staticmethod
    def _added(callback: StoredCallback, legs_used: int) -> ev.CallbackAdded:
        assert callback.call_id is not None
        return ev.CallbackAdded(
            callback.call_id,
            callback.id,
            callback.number,
            callback.queue_id,
            callback.place_at.timestamp(),
            callback.priority,
            callback.scheduled_at.timestamp() if callback.scheduled_at else 0.0,
            callback.attempts,
            legs_used,
        )

    # --- scope --------------------------------------------------------------------------------
    async def _scope(self, viewer: Principal) -> CallbackFilter:
        if viewer.role is Role.OPERATOR:
            operator = await self._directory.for_user(viewer.id)
            return CallbackFilter(operator_id=operator.id if operator else "", queue_ids=None)
        if viewer.role is Role.SUPERVISOR:
            if viewer.group_id is None:
                return CallbackFilter(queue_ids=())
            return CallbackFilter(queue_ids=await self._store.queues_of_group(viewer.group_id))
        return CallbackFilter()

    async def _visible(self, callback_id: str, viewer: Principal) -> StoredCallback:
        callback = await self._store.get(callback_id)
        scope = await self._scope(viewer)
        if (
            callback is None
            or (scope.queue_ids is not None and callback.queue_id not in scope.queue_ids)
            or (scope.operator_id is not None and callback.operator_id != scope.operator_id)
        ):
            raise NotFound("Callback not found")
        return callback

    # --- reads --------------------------------------------------------------------------------
    def _instant(self, value: date | datetime, *, end: bool) -> datetime:
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=self._tz)
            return moment + timedelta(microseconds=1) if end else moment
        return local_midnight(value + timedelta(days=1) if end else value, self._tz)

    async def list_callbacks(
        self, query: CallbackListQuery, viewer: Principal
    ) -> list[StoredCallback]:
        scope = await self._scope(viewer)
        since = None if query.date_from is None else self._instant(query.date_from, end=False)
        until = None if query.date_to is None else self._instant(query.date_to, end=True)
        if since is not None and until is not None and since >= until:
            raise field_error("query", "date_to", "date_to must be after date_from")
        where = CallbackFilter(
            status=query.status,
            queue_id=query.queue_id,
            operator_id=scope.operator_id,
            since=since,
            until=until,
            queue_ids=scope.queue_ids,
        )
        return await self._store.find(where, query.limit)

    async def get(self, callback_id: str, viewer: Principal) -> StoredCallback:
        return await self._visible(callback_id, viewer)

    # --- changes ------------------------------------------------------------------------------
    async def create(self, body: CallbackCreate, actor: Principal) -> StoredCallback:
        """Book a callback: for a missed call (its number and queue), or a number and queue."""
        origin_call_id = body.call_id
        if origin_call_id is not None:
            call = await self._calls.get(origin_call_id)
            if call is None:
                raise NotFound("Call not found")
            if call.status != "missed":
                raise Conflict("Only a missed call can be turned into a callback")
            if call.queue_id is None:
                raise Conflict("The call was in no queue: book it with queue_id and number")
            queue_id, number = call.queue_id, call.caller_number
        else:
            assert body.queue_id is not None and body.number is not None
            queue_id, number = body.queue_id, body.number
        if not await self._store.queue_exists(queue_id):
            raise field_error("body", "queue_id", f"queue {queue_id} does not exist")
        scope = await self._scope(actor)
        if scope.queue_ids is not None and queue_id not in scope.queue_ids:
            raise PermissionDenied("The queue is not one of your group's")
        if await self._store.open_for(queue_id, number) is not None:
            raise Conflict("A callback for this number and queue is already pending")
        now = self._clock()
        callback_id, call_id = str(uuid.uuid4()), str(uuid.uuid4())
        values = {
            "id": callback_id,
            "queue_id": queue_id,
            "number": number,
            "status": "pending",
            "origin_call_id": origin_call_id,
            "priority": 0,
            "place_at": to_iso(now),
            "scheduled_at": to_iso(body.scheduled_at) if body.scheduled_at else None,
            "requested_by": actor.id,
        }
        await self._records.later(call_id, lambda: self._facts.open(call_id, values, now))
        if origin_call_id is not None:
            data = {"callback_id": callback_id, "by": actor.id}
            await self._records.later(
                origin_call_id,
                lambda: self._records.noted(origin_call_id, now, "callback_requested", data),
            )
        callback = await self._store.get(callback_id)
        if callback is None:  # lost to a concurrent booking of the same number and queue
            raise Conflict("A callback for this number and queue is already pending")
        await self._submit(self._added(callback, 0))
        async with self._db.transaction() as conn:
            await audit(
                conn, now, actor, "callback", "created", callback_id, {"queue_id": queue_id}
            )
        return await self._store.get(callback_id) or callback

    async def _pending(self, callback_id: str, actor: Principal) -> StoredCallback:
        if actor.role is Role.OPERATOR:
            raise PermissionDenied()
        callback = await self._visible(callback_id, actor)
        if callback.status != "pending" or callback.call_id is None:
            raise Conflict(f"The callback is {callback.status}: only a pending one can change")
        return callback

    async def cancel(self, callback_id: str, actor: Principal) -> StoredCallback:
        callback = await self._pending(callback_id, actor)
        assert callback.call_id is not None
        now = self._clock()
        await self._store.change(
            callback.id,
            now,
            withdraw=self._facts.withdraw_reminders(callback.id),
            status="cancelled",
            reason="cancelled",
        )
        await self._records.later(
            callback.call_id,
            lambda: self._records.noted(
                callback.call_id or "", now, "callback_cancelled", {"by": actor.id}
            ),
        )
        await self._submit(ev.CallbackCancelled(callback.call_id))
        cancelled = await self._store.get(callback.id) or callback
        self._facts.publish("cancelled", cancelled, now)
        async with self._db.transaction() as conn:
            await audit(conn, now, actor, "callback", "cancelled", callback.id, {})
        return cancelled

    async def reschedule(
        self, callback_id: str, body: CallbackReschedule, actor: Principal
    ) -> StoredCallback:
        callback = await self._pending(callback_id, actor)
        assert callback.call_id is not None
        await self._submit(ev.CallbackRescheduled(callback.call_id, body.scheduled_at.timestamp()))
        async with self._db.transaction() as conn:
            at, changes = self._clock(), {"scheduled_at": to_iso(body.scheduled_at)}
            await audit(conn, at, actor, "callback", "rescheduled", callback.id, changes)
        return await self._store.get(callback.id) or callback

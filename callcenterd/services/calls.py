"""Call history as people read it, and the few changes they make by hand.

Who sees what: admins and managers every call; a supervisor the calls of their group (rung
for or answered by its operators, or in queues one of its operators is a member of); an
operator the calls they answered or were rung for. Notes and ratings are written by admins
and, on calls they answered, by operators; only an admin may close a call left open.

Recordings are fetched from Asterisk (ARI) within the same scope; ARI's answers become the
API's errors here (no recording: NotFound; ARI down or refusing: AsteriskUnavailable).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Generic, TypeVar

import structlog

from callcenterd.analytics.periods import local_midnight
from callcenterd.contract.routing import CallCreate, CallFilterQuery, CallListQuery, CallUpdate
from callcenterd.contract.validation import field_error
from callcenterd.domain.clock import to_iso
from callcenterd.domain.users import Role
from callcenterd.errors import AsteriskUnavailable, Conflict, NotFound, PermissionDenied
from callcenterd.security import Clock, Principal
from callcenterd.services.asterisk_errors import as_api_errors
from callcenterd.services.context import audit
from callcenterd.settings import Settings
from callcenterd.store.call_counts import CallCounts
from callcenterd.store.call_csv import CSV_HEADER
from callcenterd.store.call_legs import CallLeg, CallLegs
from callcenterd.store.call_queries import CallEvent, CallFilter, CallQueries, CallScope
from callcenterd.store.call_queries import CallRecord as CallRecord  # re-exported for api/
from callcenterd.store.db import Database
from callcenterd.store.operators import OperatorDirectory
from callcenterd.store.queues import QueueRepository
from callcenterd.telephony.ari_link import AriLink

log = structlog.get_logger(__name__)

# Calls per export batch: SQLite renders one in a few ms (the page slot is not held long),
# and the per-batch cost of the query (one index seek) stays negligible.
EXPORT_BATCH = 500


T = TypeVar("T")


class SharedReads(Generic[T]):
    """Identical reads asked for while one waits its turn share it; one turn at a time.

    A crowd of dashboards polling the same page costs one query per turn instead of one
    each. A read joins only a query that has not started yet, so every answer still comes
    from a query begun after it was asked for: nobody gets a page older than their request
    (a call they just changed, say). Per key, then, at most one query runs and one waits.

    The turn (`slot`) keeps a crowd of different pages in line here rather than on every
    database reader: token checks and the other dashboards keep a reader free.
    """

    def __init__(self, slot: asyncio.Semaphore) -> None:
        self._slot = slot
        self._waiting: dict[Hashable, asyncio.Task[T]] = {}

    async def read(self, key: Hashable, fetch: Callable[[], Awaitable[T]]) -> T:
        task = self._waiting.get(key)
        if task is None:
            task = asyncio.create_task(self._run(key, fetch))
            # Read the outcome even if every asker has gone (no "never retrieved" warning).
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._waiting[key] = task
        # One asker leaving (a client gone) must not cancel the query for the others.
        return await asyncio.shield(task)

    async def _run(self, key: Hashable, fetch: Callable[[], Awaitable[T]]) -> T:
        try:
            async with self._slot:
                self._forget(key)  # from here on it reads the database as it is now
                return await fetch()
        finally:
            self._forget(key)

    def _forget(self, key: Hashable) -> None:
        if self._waiting.get(key) is asyncio.current_task():
            del self._waiting[key]


@dataclass(frozen=True, slots=True)
class CallPageResult:
    items_json: str  # the JSON array of the page's CallItem objects, rendered by the store
    total: int
    page: int
    pages: int


@dataclass(frozen=True, slots=True)
class CallWithTimeline:
    call: CallRecord
    events: list[CallEvent]
    legs: list[CallLeg] = field(default_factory=list)


def recording_url(call: CallRecord) -> str | None:
    return f"/api/calls/{call.id}/recording" if call.recording else None


class CallService:
    def __init__(
        self,
        db: Database,
        calls: CallQueries,
        directory: OperatorDirectory,
        queues: QueueRepository,
        clock: Clock,
        settings: Settings,
        ari: AriLink,
    ) -> None:
        self._db = db
        self._calls = calls
        self._counts = CallCounts(db)
        self._legs = CallLegs(db)
        self._ari = ari
        self._directory = directory
        self._queues = queues
        self._page_slot = asyncio.Semaphore(1)  # a page or an export batch at a time
        self._pages: SharedReads[tuple[str, int]] = SharedReads(self._page_slot)
        self._clock = clock
        self._settings = settings

    async def _scope(self, viewer: Principal) -> CallScope:
        if viewer.role is Role.OPERATOR:
            operator = await self._directory.for_user(viewer.id)
            return CallScope(operator_id=operator.id) if operator else CallScope(nothing=True)
        if viewer.role is Role.SUPERVISOR:
            if viewer.group_id is None:
                return CallScope(nothing=True)
            return CallScope(group_id=viewer.group_id)
        return CallScope()

    # --- reads ------------------------------------------------------------------------------
    def _instant(self, value: date | datetime, *, end: bool) -> datetime:
        """A filter bound in UTC: naive times are local; a date is its local day."""
        tz = self._settings.tz
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=tz)
            # An instant given as the end is inclusive: stop just after it.
            return moment + timedelta(microseconds=1) if end else moment
        day = value + timedelta(days=1) if end else value
        return local_midnight(day, tz)

    def filter_of(self, query: CallFilterQuery) -> CallFilter:
        since = None if query.date_from is None else self._instant(query.date_from, end=False)
        until = None if query.date_to is None else self._instant(query.date_to, end=True)
        if since is not None and until is not None and since >= until:
            raise field_error("query", "date_to", "date_to must be after date_from")
        return CallFilter(
            operator_id=query.operator_id,
            status=query.status,
            queue_id=query.queue_id,
            since=since,
            until=until,
        )

    async def page(self, query: CallListQuery, viewer: Principal) -> CallPageResult:
        where = self.filter_of(query)
        scope = await self._scope(viewer)
        key = (scope, where, query.skip, query.limit)
        items_json, total = await self._pages.read(
            key, lambda: self._calls.page_json(scope, where, query.skip, query.limit)
        )
        return CallPageResult(
            items_json=items_json,
            total=total,
            page=query.skip // query.limit + 1,
            pages=math.ceil(total / query.limit),
        )

    async def export_csv(
        self, query: CallFilterQuery, viewer: Principal, batch: int = EXPORT_BATCH
    ) -> AsyncGenerator[str, None]:
        """The page's calls (same filters, same scope), all of them, newest first, as CSV
        lines (store.call_csv) in batches, the header row at the head of the first.

        The first batch always comes (maybe only the header), so a caller can fetch it
        before it commits to a response. Each batch takes the page slot on its own: a long export
        interleaves with pages instead of holding them up for its whole length.
        """
        where = self.filter_of(query)
        scope = await self._scope(viewer)
        after = None
        head = CSV_HEADER
        while True:
            async with self._page_slot:
                lines, after = await self._calls.csv_batch(scope, where, after, batch)
            yield head + lines
            head = ""
            if after is None:
                return

    async def _visible(self, call_id: str, viewer: Principal) -> CallRecord:
        call = await self._calls.get(call_id)
        if call is None or not await self._calls.visible(call_id, await self._scope(viewer)):
            # Calls outside the viewer's scope are not confirmed to exist.
            raise NotFound("Call not found")
        return call

    async def get(self, call_id: str, viewer: Principal) -> CallWithTimeline:
        call = await self._visible(call_id, viewer)
        return CallWithTimeline(
            call, await self._calls.events(call_id), await self._legs.of_call(call_id)
        )

    @asynccontextmanager
    async def recording(
        self, call_id: str, viewer: Principal, chunk_size: int
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """The call's recording as chunks streamed from Asterisk, within the viewer's scope
        (404 outside it); released on leaving the block."""
        found = await self._visible(call_id, viewer)
        if not found.recording:
            raise NotFound(f"Call {call_id} has no recording")
        control = self._ari.connected_control
        if control is None:
            raise AsteriskUnavailable("ARI is not connected: the recording cannot be fetched")
        gone = NotFound(f"Recording of call {call_id} not found in Asterisk")
        with as_api_errors(not_found=lambda _: gone):
            upstream = await control.recording_file(found.recording)
        try:
            yield upstream.content.iter_chunked(chunk_size)
        finally:
            upstream.release()

    async def counts_by_status(self) -> dict[str, int]:
        """Every call record by status, zeros included (for /metrics)."""
        return await self._counts.by_status()

    # --- changes by hand --------------------------------------------------------------------
    async def create(self, body: CallCreate, actor: Principal) -> CallWithTimeline:
        """A record of a call the daemon did not see (admin): always starts `incoming`."""
        call_id = str(uuid.uuid4())
        now = self._clock()
        stamp = to_iso(now)
        async with self._db.transaction() as conn:
            if body.queue_id is not None and not await self._queues.exists(conn, body.queue_id):
                raise field_error("body", "queue_id", f"queue {body.queue_id} does not exist")
            if await self._calls.open_channel(conn, body.channel_id):
                raise Conflict(
                    f"Channel {body.channel_id} already has an open call", field="channel_id"
                )
            await self._calls.insert(
                conn,
                {
                    "id": call_id,
                    "channel_id": body.channel_id,
                    "caller_number": body.caller_number,
                    "called_number": body.called_number,
                    "queue_id": body.queue_id,
                    "status": body.status,
                    "start_time": stamp,
                    "routed_by": "api",
                    "created_at": stamp,
                    "updated_at": stamp,
                },
            )
            await self._calls.add_event(conn, call_id, now, "created", None, {"by": actor.id})
            await audit(conn, now, actor, "call", "create", call_id, body.model_dump(mode="json"))
        log.info("call_recorded_by_hand", call_id=call_id, channel_id=body.channel_id)
        return await self.get(call_id, actor)

    async def update(self, call_id: str, body: CallUpdate, actor: Principal) -> CallWithTimeline:
        call = await self._visible(call_id, actor)
        sent = body.model_fields_set
        if actor.role is Role.OPERATOR:
            operator = await self._directory.for_user(actor.id)
            if operator is None or call.operator_id != operator.id:
                raise PermissionDenied("Operators may only edit calls they answered")
            if "status" in sent and body.status is not None:
                raise PermissionDenied("Only an admin may correct a call's status", field="status")
        now = self._clock()
        changes: dict[str, Any] = {}
        if "notes" in sent:
            changes["notes"] = body.notes
        if "rating" in sent:
            changes["rating"] = body.rating
        correction: dict[str, Any] | None = None
        if body.status is not None and body.status != call.status:
            changes.update(self._closing(call, body.status, now))
            correction = {"from": call.status, "to": body.status, "by": actor.id}
        if not changes:
            return await self.get(call_id, actor)
        async with self._db.transaction() as conn:
            await self._calls.update(conn, call_id, {**changes, "updated_at": to_iso(now)})
            if correction is not None:
                await self._calls.add_event(
                    conn, call_id, now, "status_corrected", None, correction
                )
            await audit(
                conn,
                now,
                actor,
                "call",
                "update",
                call_id,
                body.model_dump(mode="json", exclude_unset=True),
            )
        return await self.get(call_id, actor)

    @staticmethod
    def _closing(call: CallRecord, status: str, now: datetime) -> dict[str, Any]:
        """The row changes that close `call` as `status` (completed or missed).

        What the stored call already is decides what it may become: a 409, not a 422.
        """
        if call.status in ("completed", "missed"):
            raise Conflict(f"The call is already closed as {call.status}", field="status")
        if status == "completed" and call.answer_time is None:
            raise Conflict("A call never answered can only be closed as missed", field="status")
        end = call.end_time or now
        changes: dict[str, Any] = {"status": status, "end_time": to_iso(end)}
        if status == "completed":
            assert call.answer_time is not None
            changes["duration"] = max(0, round((end - call.answer_time).total_seconds()))
        else:
            changes["duration"] = 0
            if call.wait_seconds is None:
                changes["wait_seconds"] = round((end - call.start_time).total_seconds(), 3)
        return changes

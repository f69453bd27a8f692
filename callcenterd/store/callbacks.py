"""Callbacks as stored (migration 0010): booked, re-adopted after a restart, listed."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.domain.messages import OutgoingMessage
from callcenterd.errors import Conflict
from callcenterd.store.db import Database, insert_sql, set_sql
from callcenterd.store.outbox import enqueue_in

# Callbacks still to be served (one per number and queue: the unique index callbacks_one_open).
OPEN_STATUSES = ("pending", "dialing")
_COLUMNS = (
    "id, queue_id, number, status, call_id, origin_call_id, priority, place_at, scheduled_at,"
    " attempts, operator_id, reason, requested_by, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class StoredCallback:
    id: str
    queue_id: str
    number: str
    status: str
    call_id: str | None  # the callback's own call record
    origin_call_id: str | None
    priority: int
    place_at: datetime  # the arrival that keeps the caller's place in line
    scheduled_at: datetime | None  # not dialed before
    attempts: int
    operator_id: str | None
    reason: str | None
    requested_by: str | None  # "caller" (pressed 1) or the user id who booked it
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CallbackFilter:
    status: str | None = None
    queue_id: str | None = None
    operator_id: str | None = None
    since: datetime | None = None  # created_at >= since
    until: datetime | None = None  # created_at < until
    queue_ids: tuple[str, ...] | None = None  # a supervisor's: only these queues


def _callback(row: sqlite3.Row) -> StoredCallback:
    def when(name: str) -> datetime | None:
        value = row[name]
        return from_iso(value) if value else None

    return StoredCallback(
        id=row["id"],
        queue_id=row["queue_id"],
        number=row["number"],
        status=row["status"],
        call_id=row["call_id"],
        origin_call_id=row["origin_call_id"],
        priority=int(row["priority"]),
        place_at=from_iso(row["place_at"]),
        scheduled_at=when("scheduled_at"),
        attempts=int(row["attempts"]),
        operator_id=row["operator_id"],
        reason=row["reason"],
        requested_by=row["requested_by"],
        created_at=from_iso(row["created_at"]),
        updated_at=from_iso(row["updated_at"]),
    )


class CallbackStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        return self._db.transaction()

    async def queue_exists(self, queue_id: str) -> bool:
        """Whether a callback can be booked into this queue (it exists, not deleted)."""
        row = await self._db.fetch_one(
            "SELECT 1 FROM queues WHERE id = ? AND deleted_at IS NULL", (queue_id,)
        )
        return row is not None

    async def insert(self, conn: aiosqlite.Connection, values: dict[str, Any]) -> None:
        """A new pending callback; Conflict when one is open for the number and queue."""
        sql, params = insert_sql("callbacks", values)
        try:
            await conn.execute(sql, params)
        except sqlite3.IntegrityError as err:
            if "callbacks" in str(err) and "UNIQUE" in str(err).upper():
                raise Conflict("A callback for this number and queue is already pending") from err
            raise

    async def get(self, callback_id: str) -> StoredCallback | None:
        row = await self._db.fetch_one(
            f"SELECT {_COLUMNS} FROM callbacks WHERE id = ?", (callback_id,)
        )
        return _callback(row) if row else None

    async def open_for(self, queue_id: str, number: str) -> StoredCallback | None:
        row = await self._db.fetch_one(
            f"SELECT {_COLUMNS} FROM callbacks WHERE queue_id = ? AND number = ?"
            " AND status IN ('pending', 'dialing')",
            (queue_id, number),
        )
        return _callback(row) if row else None

    async def open_callbacks(self) -> list[StoredCallback]:
        """Every callback still to be served, oldest place first (start-up re-adoption)."""
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM callbacks WHERE status IN ('pending', 'dialing')"
            " ORDER BY place_at, id"
        )
        return [_callback(row) for row in rows]

    async def find(self, where: CallbackFilter, limit: int) -> list[StoredCallback]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("status", where.status),
            ("queue_id", where.queue_id),
            ("operator_id", where.operator_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if where.since is not None:
            clauses.append("created_at >= ?")
            params.append(to_iso(where.since))
        if where.until is not None:
            clauses.append("created_at < ?")
            params.append(to_iso(where.until))
        if where.queue_ids is not None:
            clauses.append(f"queue_id IN ({', '.join('?' * len(where.queue_ids)) or 'NULL'})")
            params.extend(where.queue_ids)
        sql = f"SELECT {_COLUMNS} FROM callbacks"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        rows = await self._db.fetch_all(
            sql + " ORDER BY created_at DESC, id LIMIT ?", (*params, limit)
        )
        return [_callback(row) for row in rows]

    async def change(
        self,
        callback_id: str,
        at: datetime,
        *,
        messages: Sequence[OutgoingMessage] = (),
        withdraw: str | None = None,
        **columns: Any,
    ) -> None:
        """Change the callback; in the same transaction queue `messages` (its SMS) and
        withdraw its still-queued messages whose keys start with `withdraw` (a reminder of a
        time that no longer holds), except those just queued."""
        assignments, params = set_sql({**columns, "updated_at": to_iso(at)})
        async with self._db.transaction() as conn:
            await conn.execute(
                f"UPDATE callbacks SET {assignments} WHERE id = ?", (*params, callback_id)
            )
            if withdraw is not None:
                keep = [m.idempotency_key for m in messages]
                await withdraw_queued_in(conn, withdraw, at, keep)
            await enqueue_in(conn, messages, at)

    async def events_of(self, call_id: str) -> int:
        """Timeline entries of a call: an upper bound of the legs it used (new leg ids must
        not repeat them after a restart)."""
        row = await self._db.fetch_one(
            "SELECT COUNT(*) AS n FROM call_events WHERE call_id = ?", (call_id,)
        )
        return int(row["n"]) if row else 0

    async def queues_of_group(self, group_id: str) -> tuple[str, ...]:
        """Queues one of the group's operators is a member of (a supervisor's scope)."""
        rows = await self._db.fetch_all(
            "SELECT DISTINCT m.queue_id FROM queue_members m"
            " JOIN operators o ON o.id = m.operator_id WHERE o.group_id = ? ORDER BY 1",
            (group_id,),
        )
        return tuple(row[0] for row in rows)

    async def orphaned_calls(self) -> list[tuple[str, str]]:
        """(call id, status) of callback call records still open although their callback is
        over: a conversation the daemon was serving when it stopped."""
        rows = await self._db.fetch_all(
            "SELECT c.id, c.status FROM calls c JOIN callbacks b ON b.call_id = c.id"
            " WHERE c.status IN ('incoming', 'answered') AND c.routed_by = 'callback'"
            " AND b.status NOT IN ('pending', 'dialing')"
        )
        return [(str(row[0]), str(row[1])) for row in rows]


async def withdraw_queued_in(
    conn: aiosqlite.Connection, key_prefix: str, at: datetime, keep: Sequence[str] = ()
) -> int:
    """Cancel the outbox's still-queued messages whose idempotency key starts with
    `key_prefix` (a callback's reminders), but those in `keep`; the number cancelled."""
    sql = (
        "UPDATE outbox SET state = 'cancelled', updated_at = ?,"
        " last_error = 'withdrawn: the callback changed'"
        " WHERE state = 'queued' AND substr(idempotency_key, 1, ?) = ?"
    )
    if keep:
        sql += f" AND idempotency_key NOT IN ({', '.join('?' * len(keep))})"
    cursor = await conn.execute(sql, (to_iso(at), len(key_prefix), key_prefix, *keep))
    return cursor.rowcount

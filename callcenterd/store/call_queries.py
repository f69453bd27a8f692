"""The read side of call records: lists with filters, one call with its timeline, figures.

Plus the two writes people make by hand: an admin's record of a call (POST /api/calls/) and
notes, rating or a status correction (PUT /api/calls/{id}). Live calls are written by
`store/calls.py` only.

Every filter has an index: `calls_start` (dates), `calls_operator_start`, `calls_queue_start`,
`calls_status_start`, and `call_operators` (maintained by triggers, migration 0002) for "the
calls an operator was rung for or answered".
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.store.call_csv import CSV_LINE_SQL
from callcenterd.store.db import Database, insert_sql, set_sql

_CALL_COLUMNS = (
    "c.id, c.channel_id, c.caller_number, c.called_number, c.operator_id, c.queue_id, c.status,"
    " c.reason, c.start_time, c.answer_time, c.end_time, c.duration, c.wait_seconds,"
    " c.recording, c.notes, c.rating, c.routed_by, c.operators_tried, c.created_at,"
    " c.updated_at, c.hold_seconds, u.name AS operator_name, q.name AS queue_name"
)


def _json_time(column: str) -> str:
    """An ISO timestamp column as pydantic serialises it: no fraction when it is zero."""
    return (
        f"CASE WHEN substr({column}, 20, 7) = '.000000'"
        f" THEN substr({column}, 1, 19) || 'Z' ELSE {column} END"
    )


# A call list item (api CallItem) as one JSON object rendered by SQLite; a test holds it equal
# to the pydantic model's output for the same rows.
_CALL_ITEM_JSON = (
    "json_object('id', c.id, 'channel_id', c.channel_id, 'caller_number', c.caller_number,"
    " 'called_number', c.called_number, 'operator_id', c.operator_id,"
    " 'operator_name', u.name, 'queue_id', c.queue_id, 'queue_name', q.name,"
    " 'status', c.status, 'reason', c.reason,"
    f" 'start_time', {_json_time('c.start_time')},"
    f" 'answer_time', {_json_time('c.answer_time')},"
    f" 'end_time', {_json_time('c.end_time')},"
    " 'duration', c.duration, 'wait_seconds', c.wait_seconds,"
    " 'recording_url', CASE WHEN c.recording IS NOT NULL AND c.recording != ''"
    " THEN '/api/calls/' || c.id || '/recording' END,"
    " 'notes', c.notes, 'rating', c.rating, 'routed_by', c.routed_by,"
    f" 'created_at', {_json_time('c.created_at')})"
)
# Deleted operators and queues keep their names in history: no deleted_at filter here.
_CALL_JOINS = (
    " FROM calls c LEFT JOIN operators o ON o.id = c.operator_id"
    " LEFT JOIN users u ON u.id = o.user_id LEFT JOIN queues q ON q.id = c.queue_id"
)


@dataclass(frozen=True, slots=True)
class CallRecord:
    id: str
    channel_id: str
    caller_number: str
    called_number: str | None
    operator_id: str | None
    operator_name: str | None
    queue_id: str | None
    queue_name: str | None
    status: str
    reason: str | None
    start_time: datetime
    answer_time: datetime | None
    end_time: datetime | None
    duration: int | None
    wait_seconds: float | None
    recording: str | None
    notes: str | None
    rating: int | None
    routed_by: str
    operators_tried: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    hold_seconds: float = 0.0  # time on hold, counted apart from the talk (duration)


@dataclass(frozen=True, slots=True)
class CallEvent:
    at: datetime
    kind: str
    operator_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallScope:
    """Whose calls a viewer sees. Both None: everyone's.

    operator_id: calls that operator answered or was rung for.
    group_id: calls answered by or rung for operators of the group, and calls of queues
    having a member of the group.
    """

    operator_id: str | None = None
    group_id: str | None = None
    nothing: bool = False  # e.g. a supervisor without a group


@dataclass(frozen=True, slots=True)
class CallFilter:
    operator_id: str | None = None  # the operator who answered
    status: str | None = None
    queue_id: str | None = None
    since: datetime | None = None  # start_time >= since
    until: datetime | None = None  # start_time < until


@dataclass(frozen=True, slots=True)
class CallCursor:
    """Where an export batch ended: the last row's stored start_time and id."""

    start_time: str
    call_id: str


def _time(value: str | None) -> datetime | None:
    return from_iso(value) if value else None


def _tried(text: str) -> tuple[str, ...]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return ()
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def _call(row: sqlite3.Row) -> CallRecord:
    return CallRecord(
        id=row["id"],
        channel_id=row["channel_id"],
        caller_number=row["caller_number"],
        called_number=row["called_number"],
        operator_id=row["operator_id"],
        operator_name=row["operator_name"],
        queue_id=row["queue_id"],
        queue_name=row["queue_name"],
        status=row["status"],
        reason=row["reason"],
        start_time=from_iso(row["start_time"]),
        answer_time=_time(row["answer_time"]),
        end_time=_time(row["end_time"]),
        duration=row["duration"],
        wait_seconds=row["wait_seconds"],
        recording=row["recording"],
        notes=row["notes"],
        rating=row["rating"],
        routed_by=row["routed_by"],
        operators_tried=_tried(row["operators_tried"]),
        created_at=from_iso(row["created_at"]),
        updated_at=from_iso(row["updated_at"]),
        hold_seconds=round(float(row["hold_seconds"]), 3),
    )


def _event(row: sqlite3.Row) -> CallEvent:
    try:
        data = json.loads(row["data"])
    except json.JSONDecodeError:
        data = {"raw": row["data"]}
    return CallEvent(
        at=from_iso(row["at"]),
        kind=row["kind"],
        operator_id=row["operator_id"],
        data=data if isinstance(data, dict) else {"value": data},
    )


def _scope_sql(scope: CallScope) -> tuple[list[str], list[Any]]:
    if scope.nothing:
        return ["0"], []
    if scope.operator_id is not None:
        return ["c.id IN (SELECT call_id FROM call_operators WHERE operator_id = ?)"], [
            scope.operator_id
        ]
    if scope.group_id is not None:
        # A UNION of two indexed lookups, not an OR that would scan every call.
        return [
            "c.id IN (SELECT co.call_id FROM operators g"
            " JOIN call_operators co ON co.operator_id = g.id WHERE g.group_id = ?"
            " UNION SELECT qc.id FROM queue_members m JOIN operators g ON g.id = m.operator_id"
            " JOIN calls qc ON qc.queue_id = m.queue_id WHERE g.group_id = ?)"
        ], [scope.group_id, scope.group_id]
    return [], []


def _where(scope: CallScope, where: CallFilter) -> tuple[str, list[Any]]:
    clauses, params = _scope_sql(scope)
    if where.operator_id is not None:
        clauses.append("c.operator_id = ?")
        params.append(where.operator_id)
    if where.status is not None:
        clauses.append("c.status = ?")
        params.append(where.status)
    if where.queue_id is not None:
        clauses.append("c.queue_id = ?")
        params.append(where.queue_id)
    if where.since is not None:
        clauses.append("c.start_time >= ?")
        params.append(to_iso(where.since))
    if where.until is not None:
        clauses.append("c.start_time < ?")
        params.append(to_iso(where.until))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class CallQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- lists and details ------------------------------------------------------------------
    def list_sql(
        self, scope: CallScope, where: CallFilter, skip: int, limit: int
    ) -> tuple[str, list[Any]]:
        """The page query, one JSON item per row (exposed so a test can EXPLAIN it)."""
        condition, params = _where(scope, where)
        return (
            f"SELECT {_CALL_ITEM_JSON}{_CALL_JOINS}{condition}"
            " ORDER BY c.start_time DESC, c.id DESC LIMIT ? OFFSET ?",
            [*params, limit, skip],
        )

    def batch_sql(
        self,
        scope: CallScope,
        where: CallFilter,
        after: CallCursor | None,
        limit: int,
        rendered: str,
    ) -> tuple[str, list[Any]]:
        """An export batch: the page query's order, continued after `after` (keyset: each
        batch is an index seek, where OFFSET would rescan every row already sent).
        `rendered` is the SQL expression selected as `line` for each call."""
        condition, params = _where(scope, where)
        if after is not None:
            condition += " AND " if condition else " WHERE "
            condition += "(c.start_time, c.id) < (?, ?)"
            params.extend([after.start_time, after.call_id])
        return (
            f"SELECT {rendered} AS line, c.start_time, c.id{_CALL_JOINS}{condition}"
            " ORDER BY c.start_time DESC, c.id DESC LIMIT ?",
            [*params, limit],
        )

    async def csv_batch(
        self, scope: CallScope, where: CallFilter, after: CallCursor | None, limit: int
    ) -> tuple[str, CallCursor | None]:
        """Up to `limit` calls after `after` as CSV lines (store.call_csv), and the cursor to
        continue from (None: that was the last batch)."""
        sql, params = self.batch_sql(scope, where, after, limit, CSV_LINE_SQL)
        rows = await self._db.fetch_all(sql, params)
        # The cursor keeps the stored text: a re-formatted time could skip or repeat rows.
        last = rows[-1] if len(rows) == limit else None
        cursor = CallCursor(last["start_time"], last["id"]) if last is not None else None
        return "".join(row["line"] for row in rows), cursor

    def count_sql(self, scope: CallScope, where: CallFilter) -> tuple[str, list[Any]]:
        condition, params = _where(scope, where)
        return f"SELECT COUNT(*) FROM calls c{condition}", params

    async def page_json(
        self, scope: CallScope, where: CallFilter, skip: int, limit: int
    ) -> tuple[str, int]:
        """One page of calls as the API's JSON array (CallItem objects), and the total.

        SQLite renders every item with its JSON functions while the interpreter is released,
        so a crowd of big dashboard pages costs the event loop almost nothing (a page of
        1,000 calls built in Python held the interpreter for tens of ms, delaying routing).
        """
        # Side by side on two readers: one wait for the loop's turn instead of two in a row.
        rows, total = await asyncio.gather(
            self._db.fetch_all(*self.list_sql(scope, where, skip, limit)),
            self._db.fetch_value(*self.count_sql(scope, where)),
        )
        return "[" + ",".join(row[0] for row in rows) + "]", int(total)

    async def get(self, call_id: str) -> CallRecord | None:
        row = await self._db.fetch_one(
            f"SELECT {_CALL_COLUMNS}{_CALL_JOINS} WHERE c.id = ?", (call_id,)
        )
        return _call(row) if row else None

    async def visible(self, call_id: str, scope: CallScope) -> bool:
        clauses, params = _scope_sql(scope)
        condition = "".join(f" AND {clause}" for clause in clauses)
        row = await self._db.fetch_one(
            f"SELECT 1 FROM calls c WHERE c.id = ?{condition}", (call_id, *params)
        )
        return row is not None

    async def events(self, call_id: str) -> list[CallEvent]:
        rows = await self._db.fetch_all(
            "SELECT at, kind, operator_id, data FROM call_events WHERE call_id = ? ORDER BY id",
            (call_id,),
        )
        return [_event(row) for row in rows]

    # --- figures ----------------------------------------------------------------------------
    async def open_by_operator(self) -> dict[str, int]:
        """Operator id -> calls they are talking on now (the open-calls index)."""
        rows = await self._db.fetch_all(
            "SELECT operator_id, COUNT(*) AS n FROM calls"
            " WHERE status = 'answered' AND operator_id IS NOT NULL GROUP BY operator_id"
        )
        return {row["operator_id"]: row["n"] for row in rows}

    async def answered_by_operator(self, since: datetime, until: datetime) -> dict[str, int]:
        """Operator id -> calls they answered that started in [since, until)."""
        rows = await self._db.fetch_all(
            "SELECT operator_id, COUNT(*) AS n FROM calls"
            " WHERE start_time >= ? AND start_time < ? AND operator_id IS NOT NULL"
            " AND answer_time IS NOT NULL GROUP BY operator_id",
            (to_iso(since), to_iso(until)),
        )
        return {row["operator_id"]: row["n"] for row in rows}

    # --- writes by hand ---------------------------------------------------------------------
    @staticmethod
    async def open_channel(conn: aiosqlite.Connection, channel_id: str) -> bool:
        async with conn.execute(
            "SELECT 1 FROM calls WHERE channel_id = ? AND status IN ('incoming', 'answered')",
            (channel_id,),
        ) as cursor:
            return await cursor.fetchone() is not None

    @staticmethod
    async def insert(conn: aiosqlite.Connection, values: Mapping[str, Any]) -> None:
        await conn.execute(*insert_sql("calls", values))

    @staticmethod
    async def update(conn: aiosqlite.Connection, call_id: str, changes: Mapping[str, Any]) -> None:
        assignments, params = set_sql(changes)
        await conn.execute(f"UPDATE calls SET {assignments} WHERE id = ?", (*params, call_id))

    @staticmethod
    async def add_event(
        conn: aiosqlite.Connection,
        call_id: str,
        at: datetime,
        kind: str,
        operator_id: str | None,
        data: Mapping[str, Any],
    ) -> None:
        await conn.execute(
            "INSERT INTO call_events (call_id, at, kind, operator_id, data) VALUES (?, ?, ?, ?, ?)",
            (call_id, to_iso(at), kind, operator_id, json.dumps(dict(data))),
        )

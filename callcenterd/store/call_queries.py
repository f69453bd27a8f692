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
from callcenterd.store.db import Database, insert_sql, set_sql

_CALL_COLUMNS = (
    "c.id, c.channel_id, c.caller_number, c.called_number, c.operator_id, c.queue_id, c.status,"
    " c.reason, c.start_time, c.answer_time, c.end_time, c.duration, c.wait_seconds,"
    " c.recording, c.notes, c.rating, c.routed_by, c.operators_tried, c.created_at,"
    " c.updated_at, u.name AS operator_name, q.name AS queue_name"
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
class HandledFigures:
    calls: int
    talk_seconds: int
    ratings: int
    rating_mean: float | None


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
        """The page query (exposed so a test can EXPLAIN it)."""
        condition, params = _where(scope, where)
        return (
            f"SELECT {_CALL_COLUMNS}{_CALL_JOINS}{condition}"
            " ORDER BY c.start_time DESC, c.id DESC LIMIT ? OFFSET ?",
            [*params, limit, skip],
        )

    def count_sql(self, scope: CallScope, where: CallFilter) -> tuple[str, list[Any]]:
        condition, params = _where(scope, where)
        return f"SELECT COUNT(*) FROM calls c{condition}", params

    async def page(
        self, scope: CallScope, where: CallFilter, skip: int, limit: int
    ) -> tuple[list[CallRecord], int]:
        rows = await self._db.fetch_all(*self.list_sql(scope, where, skip, limit))
        total = int(await self._db.fetch_value(*self.count_sql(scope, where)))
        # A big page takes tens of ms to convert: off the loop, so routing keeps its turns.
        return await asyncio.to_thread(lambda: [_call(row) for row in rows]), total

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

    async def handled(self, operator_id: str, since: datetime, until: datetime) -> HandledFigures:
        """Completed calls the operator answered (started in the period): count, talk, rating."""
        row = await self._db.fetch_one(
            "SELECT COUNT(*) AS n, COALESCE(SUM(COALESCE(duration,"
            " CAST(ROUND((julianday(end_time) - julianday(answer_time)) * 86400) AS INTEGER),"
            " 0)), 0) AS talk, COUNT(rating) AS rated, AVG(rating) AS mean"
            " FROM calls WHERE operator_id = ? AND start_time >= ? AND start_time < ?"
            " AND status = 'completed'",
            (operator_id, to_iso(since), to_iso(until)),
        )
        assert row is not None
        return HandledFigures(
            calls=int(row["n"]),
            talk_seconds=int(row["talk"]),
            ratings=int(row["rated"]),
            rating_mean=None if row["mean"] is None else float(row["mean"]),
        )

    async def unanswered_rings(self, operator_id: str, since: datetime, until: datetime) -> int:
        """Rings of this operator that ended unanswered ('leg_ended', outcome no_answer)."""
        return int(
            await self._db.fetch_value(
                "SELECT COUNT(*) FROM call_events WHERE operator_id = ? AND at >= ? AND at < ?"
                " AND kind = 'leg_ended' AND json_extract(data, '$.outcome') = 'no_answer'",
                (operator_id, to_iso(since), to_iso(until)),
            )
        )

    async def offered(self, operator_id: str, since: datetime, until: datetime) -> int:
        """Distinct calls (started in the period) the operator was rung for or answered."""
        return int(
            await self._db.fetch_value(
                "SELECT COUNT(*) FROM call_operators"
                " WHERE operator_id = ? AND start_time >= ? AND start_time < ?",
                (operator_id, to_iso(since), to_iso(until)),
            )
        )

    async def resolved_first_time(self, operator_id: str, since: datetime, until: datetime) -> int:
        """Completed calls of the operator whose caller did not call again within 24 h of
        the call's end (any queue, any outcome)."""
        return int(
            await self._db.fetch_value(
                "SELECT COUNT(*) FROM calls c WHERE c.operator_id = ? AND c.start_time >= ?"
                " AND c.start_time < ? AND c.status = 'completed' AND NOT EXISTS ("
                " SELECT 1 FROM calls n WHERE n.caller_number = c.caller_number"
                " AND n.start_time > c.start_time AND n.id != c.id"
                " AND julianday(n.start_time)"
                " <= julianday(COALESCE(c.end_time, c.start_time)) + 1)",
                (operator_id, to_iso(since), to_iso(until)),
            )
        )

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

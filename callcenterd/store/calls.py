"""The write side of call records: every state change of a live call, and its timeline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.store.db import Database, set_sql


@dataclass(frozen=True, slots=True)
class OpenCall:
    """A call record still `incoming` or `answered`: live, or left open by a crash."""

    id: str
    channel_id: str
    caller_number: str
    called_number: str | None
    status: str
    queue_id: str | None
    operator_id: str | None
    start_time: datetime
    answer_time: datetime | None
    legs_used: int


class CallWriter:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def open_calls(self, routed_by: str = "ari") -> list[OpenCall]:
        rows = await self._db.fetch_all(
            "SELECT c.id, c.channel_id, c.caller_number, c.called_number, c.status, c.queue_id,"
            " c.operator_id, c.start_time, c.answer_time,"
            " (SELECT COUNT(*) FROM call_events e WHERE e.call_id = c.id AND e.kind = 'ringing')"
            " AS legs_used"
            " FROM calls c WHERE c.status IN ('incoming', 'answered') AND c.routed_by = ?"
            " ORDER BY c.start_time",
            (routed_by,),
        )
        return [
            OpenCall(
                id=row["id"],
                channel_id=row["channel_id"],
                caller_number=row["caller_number"],
                called_number=row["called_number"],
                status=row["status"],
                queue_id=row["queue_id"],
                operator_id=row["operator_id"],
                start_time=from_iso(row["start_time"]),
                answer_time=from_iso(row["answer_time"]) if row["answer_time"] else None,
                legs_used=int(row["legs_used"]),
            )
            for row in rows
        ]

    async def started(
        self,
        *,
        call_id: str,
        channel_id: str,
        caller_number: str,
        called_number: str | None,
        at: datetime,
        routed_by: str = "ari",
    ) -> None:
        stamp = to_iso(at)
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO calls (id, channel_id, caller_number, called_number, status,"
                " start_time, routed_by, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'incoming', ?, ?, ?, ?)",
                (call_id, channel_id, caller_number, called_number, stamp, routed_by, stamp, stamp),
            )
            await _event(conn, call_id, at, "started", None, {"channel_id": channel_id})

    async def update(
        self,
        call_id: str,
        at: datetime,
        kind: str,
        changes: dict[str, Any],
        *,
        operator_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Apply `changes` to the call row and add one timeline entry, atomically."""
        async with self._db.transaction() as conn:
            if changes:
                assignments, params = set_sql({**changes, "updated_at": to_iso(at)})
                await conn.execute(
                    f"UPDATE calls SET {assignments} WHERE id = ?", (*params, call_id)
                )
            await _event(conn, call_id, at, kind, operator_id, data or {})

    async def operator_tried(
        self, call_id: str, operator_id: str, at: datetime, leg_id: str
    ) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE calls SET operators_tried = json_insert(operators_tried, '$[#]', ?),"
                " updated_at = ? WHERE id = ? AND NOT EXISTS"
                " (SELECT 1 FROM json_each(operators_tried) WHERE value = ?)",
                (operator_id, to_iso(at), call_id, operator_id),
            )
            await _event(conn, call_id, at, "ringing", operator_id, {"leg_id": leg_id})


async def _event(
    conn: aiosqlite.Connection,
    call_id: str,
    at: datetime,
    kind: str,
    operator_id: str | None,
    data: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO call_events (call_id, at, kind, operator_id, data) VALUES (?, ?, ?, ?, ?)",
        (call_id, to_iso(at), kind, operator_id, json.dumps(data)),
    )


class OperatorStatusWriter:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def status(self, operator_id: str, status: str, reason: str | None, at: datetime) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE operators SET status = ?, status_reason = ?, last_activity = ?,"
                " updated_at = ? WHERE id = ?",
                (status, reason, to_iso(at), to_iso(at), operator_id),
            )

    async def presence(
        self, operator_id: str, presence: str, reason: str | None, at: datetime
    ) -> None:
        """The engine paused someone (autopause): keep the chosen presence in step."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE operators SET presence = ?, status_reason = ?, updated_at = ? WHERE id = ?",
                (presence, reason, to_iso(at), operator_id),
            )

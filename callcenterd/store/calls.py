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
class CallEnd:
    """How a call ended, as its record keeps it."""

    status: str  # completed | missed
    reason: str
    duration: int  # talk seconds
    operator_id: str | None = None
    wait_seconds: float | None = None  # None: keep what the record has
    queue_id: str | None = None  # None: keep what the record has
    reconciled: bool = False  # closed by reconciliation, not by an event


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

    async def queued(
        self,
        call_id: str,
        at: datetime,
        queue_id: str | None,
        position: int,
        *,
        moved_from: str | None = None,
        asterisk_queue: str | None = None,
    ) -> None:
        data: dict[str, Any] = {"position": position, "moved_from": moved_from}
        if asterisk_queue is not None:
            data["asterisk_queue"] = asterisk_queue
        async with self._db.transaction() as conn:
            await _change(conn, call_id, at, queue_id=queue_id)
            await _event(conn, call_id, at, "queued", None, data)

    async def ringing(
        self,
        call_id: str,
        at: datetime,
        leg_id: str,
        operator_id: str | None,
        *,
        extension: str | None = None,
    ) -> None:
        """An operator's phone rings (the operator is added to `operators_tried` once); a
        phone no operator has (AMI fallback) is kept on the timeline by its extension."""
        data: dict[str, Any] = {"leg_id": leg_id}
        async with self._db.transaction() as conn:
            if operator_id is None:
                data["extension"] = extension
            else:
                await conn.execute(
                    "UPDATE calls SET operators_tried = json_insert(operators_tried, '$[#]', ?),"
                    " updated_at = ? WHERE id = ? AND NOT EXISTS"
                    " (SELECT 1 FROM json_each(operators_tried) WHERE value = ?)",
                    (operator_id, to_iso(at), call_id, operator_id),
                )
            await _event(conn, call_id, at, "ringing", operator_id, data)

    async def leg_ended(
        self, call_id: str, at: datetime, leg_id: str, operator_id: str | None, outcome: str
    ) -> None:
        async with self._db.transaction() as conn:
            data = {"leg_id": leg_id, "outcome": outcome}
            await _event(conn, call_id, at, "leg_ended", operator_id, data)

    async def answered(
        self,
        call_id: str,
        at: datetime,
        operator_id: str | None,
        wait_seconds: float,
        *,
        extension: str | None = None,
    ) -> None:
        async with self._db.transaction() as conn:
            await _change(
                conn,
                call_id,
                at,
                status="answered",
                answer_time=to_iso(at),
                operator_id=operator_id,
                wait_seconds=round(wait_seconds, 3),
            )
            data = {} if operator_id or extension is None else {"extension": extension}
            await _event(conn, call_id, at, "answered", operator_id, data)

    async def ended(self, call_id: str, at: datetime, end: CallEnd) -> None:
        columns: dict[str, Any] = {
            "status": end.status,
            "reason": end.reason,
            "end_time": to_iso(at),
            "duration": end.duration,
        }
        if end.wait_seconds is not None:
            columns["wait_seconds"] = round(end.wait_seconds, 3)
        if end.queue_id is not None:
            columns["queue_id"] = end.queue_id
        if end.reconciled:
            kind, data = "reconciled", {"outcome": end.status, "reason": end.reason}
        else:
            kind, data = "ended", {"reason": end.reason}
        async with self._db.transaction() as conn:
            await _change(conn, call_id, at, **columns)
            await _event(conn, call_id, at, kind, end.operator_id, data)

    async def recording_started(self, call_id: str, at: datetime, name: str) -> None:
        async with self._db.transaction() as conn:
            await _change(conn, call_id, at, recording=name)
            await _event(conn, call_id, at, "recording_started", None, {})

    async def note(self, call_id: str, at: datetime, kind: str, data: dict[str, Any]) -> None:
        """A timeline entry that changes nothing else (what reconciliation did)."""
        async with self._db.transaction() as conn:
            await _event(conn, call_id, at, kind, None, data)


async def _change(conn: aiosqlite.Connection, call_id: str, at: datetime, **columns: Any) -> None:
    assignments, params = set_sql({**columns, "updated_at": to_iso(at)})
    await conn.execute(f"UPDATE calls SET {assignments} WHERE id = ?", (*params, call_id))


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
        """The engine paused someone (autopause): keep the chosen presence in step.

        The reason is the presence's too, so the pause's interval (0008) is kept under it."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE operators SET presence = ?, presence_reason = ?, status_reason = ?,"
                " updated_at = ? WHERE id = ?",
                (presence, reason, reason, to_iso(at), operator_id),
            )

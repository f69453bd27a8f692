"""Supervision sessions and the modes each was in (migration 0009): the audit of who listened
to, whispered to or barged into which call, and when."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import datetime

import aiosqlite

from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.domain.supervision import (
    ModeSpan,
    SessionState,
    SupervisionMode,
    SupervisionSession,
)
from callcenterd.store.db import Database, insert_sql, marks

_COLUMNS = (
    "id, call_id, supervisor_id, operator_id, node, extension, supervisor_channel_id,"
    " operator_channel_id, mode, state, started_at, answered_at, ended_at, end_reason"
)


def _when(value: str | None) -> datetime | None:
    return from_iso(value) if value else None


def _session(row: sqlite3.Row, modes: list[ModeSpan]) -> SupervisionSession:
    return SupervisionSession(
        id=row["id"],
        call_id=row["call_id"],
        supervisor_id=row["supervisor_id"],
        operator_id=row["operator_id"],
        node=row["node"],
        extension=row["extension"],
        supervisor_channel_id=row["supervisor_channel_id"],
        operator_channel_id=row["operator_channel_id"],
        mode=SupervisionMode(row["mode"]),
        state=SessionState(row["state"]),
        started_at=from_iso(row["started_at"]),
        answered_at=_when(row["answered_at"]),
        ended_at=_when(row["ended_at"]),
        end_reason=row["end_reason"],
        modes=tuple(modes),
    )


class SupervisionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, session: SupervisionSession) -> None:
        sql, params = insert_sql(
            "supervision_sessions",
            {
                "id": session.id,
                "call_id": session.call_id,
                "supervisor_id": session.supervisor_id,
                "operator_id": session.operator_id,
                "node": session.node,
                "extension": session.extension,
                "supervisor_channel_id": session.supervisor_channel_id,
                "operator_channel_id": session.operator_channel_id,
                "mode": session.mode.value,
                "state": session.state.value,
                "started_at": to_iso(session.started_at),
            },
        )
        async with self._db.transaction() as conn:
            await conn.execute(sql, params)

    async def joined(self, session_id: str, mode: SupervisionMode, at: datetime) -> None:
        """The supervisor's phone answered and hears the call: the first mode starts now."""
        stamp = to_iso(at)
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE supervision_sessions SET state = 'active', answered_at = ?, mode = ?"
                " WHERE id = ? AND state = 'ringing'",
                (stamp, mode.value, session_id),
            )
            await conn.execute(
                "INSERT INTO supervision_modes (session_id, mode, started_at) VALUES (?, ?, ?)",
                (session_id, mode.value, stamp),
            )

    async def mode_changed(
        self, session_id: str, mode: SupervisionMode, at: datetime, *, joined: bool
    ) -> None:
        """A new mode; on a joined session the previous mode's span closes at `at`."""
        stamp = to_iso(at)
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE supervision_sessions SET mode = ? WHERE id = ?", (mode.value, session_id)
            )
            if joined:
                await self._close_mode(conn, session_id, stamp)
                await conn.execute(
                    "INSERT INTO supervision_modes (session_id, mode, started_at) VALUES (?, ?, ?)",
                    (session_id, mode.value, stamp),
                )

    async def ended(self, session_id: str, at: datetime, reason: str) -> None:
        stamp = to_iso(at)
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE supervision_sessions SET state = 'ended', ended_at = ?, end_reason = ?"
                " WHERE id = ? AND state != 'ended'",
                (stamp, reason, session_id),
            )
            await self._close_mode(conn, session_id, stamp)

    @staticmethod
    async def _close_mode(conn: aiosqlite.Connection, session_id: str, stamp: str) -> None:
        await conn.execute(
            "UPDATE supervision_modes SET ended_at = ? WHERE session_id = ? AND ended_at IS NULL",
            (stamp, session_id),
        )

    async def get(self, session_id: str) -> SupervisionSession | None:
        found = await self._read("id = ?", (session_id,))
        return found[0] if found else None

    async def of_call(self, call_id: str) -> list[SupervisionSession]:
        return await self._read("call_id = ?", (call_id,))

    async def open_on(self, node: str) -> list[SupervisionSession]:
        """Sessions not ended on a node (after a restart: none of them can go on)."""
        return await self._read("node = ? AND state != 'ended'", (node,))

    async def _read(self, where: str, params: tuple[str, ...]) -> list[SupervisionSession]:
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM supervision_sessions WHERE {where} ORDER BY started_at, id",
            params,
        )
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        spans: dict[str, list[ModeSpan]] = defaultdict(list)
        for span in await self._db.fetch_all(
            "SELECT session_id, mode, started_at, ended_at FROM supervision_modes"
            f" WHERE session_id IN ({marks(ids)}) ORDER BY started_at, rowid",
            ids,
        ):
            spans[span["session_id"]].append(
                ModeSpan(
                    SupervisionMode(span["mode"]),
                    from_iso(span["started_at"]),
                    _when(span["ended_at"]),
                )
            )
        return [_session(row, spans[row["id"]]) for row in rows]

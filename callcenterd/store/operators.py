"""Operators as the API and the engine read them: names, presence, displayed status.

Live operators are rows not soft-deleted; routable ones also have an active user with the
operator role. Queue membership is written by store/queues.py.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.domain.queues import OperatorProfile, Presence
from callcenterd.domain.users import OperatorStatus
from callcenterd.store.db import Database, fetch_all_in, marks

# Live operators, with their user's name; `o` is operators, `u` users.
_OPERATOR_COLUMNS = (
    "o.id, o.user_id, u.name, o.extension, o.group_id, o.status, o.status_reason, o.presence,"
    " o.presence_reason, o.skills, o.max_concurrent_calls, o.last_activity, o.created_at"
)
_LIVE = "o.deleted_at IS NULL"
# Who the engine routes to: a live operator row whose user is an active operator.
_ROUTABLE = (
    "o.deleted_at IS NULL AND u.deleted_at IS NULL AND u.is_active = 1 AND u.role = 'operator'"
)


@dataclass(frozen=True, slots=True)
class OperatorRecord:
    id: str
    user_id: str
    name: str
    extension: str
    group_id: str | None
    status: OperatorStatus
    status_reason: str | None
    presence: Presence
    presence_reason: str | None
    skills: tuple[str, ...]
    max_concurrent_calls: int
    last_activity: datetime
    created_at: datetime


def _operator(row: sqlite3.Row) -> OperatorRecord:
    return OperatorRecord(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        extension=row["extension"],
        group_id=row["group_id"],
        status=OperatorStatus(row["status"]),
        status_reason=row["status_reason"],
        presence=Presence(row["presence"]),
        presence_reason=row["presence_reason"],
        skills=tuple(json.loads(row["skills"])),
        max_concurrent_calls=row["max_concurrent_calls"],
        last_activity=from_iso(row["last_activity"]),
        created_at=from_iso(row["created_at"]),
    )


def _profile(row: sqlite3.Row) -> OperatorProfile:
    presence = Presence(row["presence"])
    # The presence's own reason (the API's and, since 0008, the autopause's): status_reason
    # is what is shown, which may be "unreachable" while paused.
    reason = row["presence_reason"] if presence is Presence.PAUSED else None
    return OperatorProfile(
        id=row["id"],
        extension=row["extension"],
        skills=frozenset(json.loads(row["skills"])),
        max_concurrent_calls=row["max_concurrent_calls"],
        presence=presence,
        pause_reason=reason,
        name=row["name"],
    )


class OperatorDirectory:
    """Operators with their names, presence and displayed status (the API's operator views)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def find(
        self, group_id: str | None = None, status: OperatorStatus | None = None
    ) -> list[OperatorRecord]:
        where, params = [_LIVE], []
        if group_id is not None:
            where.append("o.group_id = ?")
            params.append(group_id)
        if status is not None:
            where.append("o.status = ?")
            params.append(status.value)
        rows = await self._db.fetch_all(
            f"SELECT {_OPERATOR_COLUMNS} FROM operators o JOIN users u ON u.id = o.user_id"
            f" WHERE {' AND '.join(where)} ORDER BY u.name COLLATE NOCASE, o.extension",
            params,
        )
        return [_operator(row) for row in rows]

    async def get(self, operator_id: str) -> OperatorRecord | None:
        row = await self._db.fetch_one(
            f"SELECT {_OPERATOR_COLUMNS} FROM operators o JOIN users u ON u.id = o.user_id"
            f" WHERE o.id = ? AND {_LIVE}",
            (operator_id,),
        )
        return _operator(row) if row else None

    async def for_user(self, user_id: str) -> OperatorRecord | None:
        row = await self._db.fetch_one(
            f"SELECT {_OPERATOR_COLUMNS} FROM operators o JOIN users u ON u.id = o.user_id"
            f" WHERE o.user_id = ? AND {_LIVE}",
            (user_id,),
        )
        return _operator(row) if row else None

    async def operator_id_of(self, user_id: str) -> str | None:
        """The user's operator row id, deleted or not (to tell the engine it is gone)."""
        value = await self._db.fetch_value("SELECT id FROM operators WHERE user_id = ?", (user_id,))
        return str(value) if value else None

    async def profile(self, operator_id: str) -> OperatorProfile | None:
        """The engine's view of one operator, or None when they are not routable."""
        row = await self._db.fetch_one(
            f"SELECT {_OPERATOR_COLUMNS} FROM operators o JOIN users u ON u.id = o.user_id"
            f" WHERE o.id = ? AND {_ROUTABLE}",
            (operator_id,),
        )
        return _profile(row) if row else None

    async def profiles(self) -> list[OperatorProfile]:
        rows = await self._db.fetch_all(
            f"SELECT {_OPERATOR_COLUMNS} FROM operators o JOIN users u ON u.id = o.user_id"
            f" WHERE {_ROUTABLE} ORDER BY o.id"
        )
        return [_profile(row) for row in rows]

    @staticmethod
    async def set_presence(
        conn: aiosqlite.Connection,
        operator_id: str,
        presence: Presence,
        reason: str | None,
        at: datetime,
    ) -> None:
        stamp = to_iso(at)
        await conn.execute(
            "UPDATE operators SET presence = ?, presence_reason = ?, last_activity = ?,"
            " updated_at = ? WHERE id = ? AND deleted_at IS NULL",
            (presence.value, reason, stamp, stamp, operator_id),
        )

    @staticmethod
    async def operators_by_extension(
        conn: aiosqlite.Connection, extensions: Sequence[str]
    ) -> dict[str, str]:
        """extension -> operator id, for live operators."""
        if not extensions:
            return {}
        rows = await fetch_all_in(
            conn,
            f"SELECT id, extension FROM operators o WHERE {_LIVE}"
            f" AND extension IN ({marks(extensions)})",
            tuple(extensions),
        )
        return {row["extension"]: row["id"] for row in rows}

    @staticmethod
    async def live_operators(conn: aiosqlite.Connection, operator_ids: Sequence[str]) -> set[str]:
        if not operator_ids:
            return set()
        rows = await fetch_all_in(
            conn,
            f"SELECT id FROM operators o WHERE {_LIVE} AND id IN ({marks(operator_ids)})",
            tuple(operator_ids),
        )
        return {row["id"] for row in rows}


async def all_operator_profiles(db: Database) -> list[OperatorProfile]:
    """Every routable operator (live row, active user with role operator), at start."""
    return await OperatorDirectory(db).profiles()
